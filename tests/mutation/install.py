"""Put one mutant into the running process: the changed function's code, or a changed table.

The mutated module is executed into a scratch namespace and only the part holding the change
is moved across, in place, so that every module which imported a name from it sees the
mutant too: a function keeps its identity and takes the mutant's code and defaults; a dict,
list or set at module level is refilled; another module-level value is rebound wherever a
loaded module holds it under its name. A class-level change (a dataclass field's default) moves the
class's attribute and its methods' defaults.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import sys
import types
from typing import Any

from tests.mutation.operators import Mutant, chain, mutate


class NotInstalled(Exception):
    """The mutant's change sits where this tool cannot move it (it is reported, not scored)."""


def _function(value: Any) -> types.FunctionType | None:
    """The plain function behind a method, property, cached property or decorated function
    (functools.cache's too)."""
    for attribute in ("fget", "__func__", "func"):
        if not isinstance(value, types.FunctionType) and hasattr(value, attribute):
            value = getattr(value, attribute)
    if hasattr(value, "__wrapped__"):
        value = inspect.unwrap(value)
    return value if isinstance(value, types.FunctionType) else None


def _move_function(old: Any, new: Any) -> None:
    old_f, new_f = _function(old), _function(new)
    if old_f is None or new_f is None:
        raise NotInstalled(f"{old!r} is not a function")
    try:
        old_f.__code__ = new_f.__code__
    except ValueError as error:  # a different closure
        raise NotInstalled(str(error)) from error
    old_f.__defaults__ = new_f.__defaults__
    old_f.__kwdefaults__ = new_f.__kwdefaults__
    if isinstance(old, functools._lru_cache_wrapper):
        old.cache_clear()


def _names(statement: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    if not names:
        raise NotInstalled(f"a {type(statement).__name__} statement at module level")
    return names


def _rebind(module: types.ModuleType, name: str, new: Any) -> None:
    old = module.__dict__[name]
    if isinstance(old, dict) and isinstance(new, dict):
        old.clear()
        old.update(new)
        return
    if isinstance(old, list | set) and type(old) is type(new):
        old.clear()
        old.update(new) if isinstance(old, set) else old.extend(new)
        return
    for loaded in list(sys.modules.values()):
        held = getattr(loaded, "__dict__", {})
        for key, value in list(held.items()):
            if key == name and value is old:
                held[key] = new


def install(module: types.ModuleType, source: str, mutant: Mutant) -> None:
    tree = mutate(source, mutant)
    namespace: dict[str, Any] = {
        "__name__": module.__name__,
        "__file__": module.__file__,
        "__builtins__": builtins,
        "__package__": module.__package__,
    }
    exec(compile(tree, module.__file__ or module.__name__, "exec"), namespace)
    nodes = chain(tree, mutant.path)
    old: Any = module
    new: Any = namespace
    holders: list[tuple[Any, Any]] = []  # (old class, new class) down to the change
    for node, parent in zip(nodes[1:], nodes, strict=False):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            old_value = vars(old)[node.name] if isinstance(old, type) else getattr(old, node.name)
            new_value = vars(new)[node.name] if isinstance(new, type) else new[node.name]
            _move_function(old_value, new_value)
            return
        if isinstance(node, ast.ClassDef):
            old = vars(old)[node.name] if isinstance(old, type) else getattr(old, node.name)
            new = vars(new)[node.name] if isinstance(new, type) else new[node.name]
            holders.append((old, new))
            continue
        if isinstance(parent, ast.ClassDef) and holders:
            old_class, new_class = holders[-1]
            for name in _names(node) if isinstance(node, ast.stmt) else []:
                setattr(old_class, name, vars(new_class)[name])
            for name, value in vars(new_class).items():
                if _function(value) is not None and name in vars(old_class):
                    old_f = _function(vars(old_class)[name])
                    assert old_f is not None
                    old_f.__defaults__ = _function(value).__defaults__  # type: ignore[union-attr]
            return
        if isinstance(parent, ast.Module):
            assert isinstance(node, ast.stmt)
            for name in _names(node):
                _rebind(module, name, namespace[name])
            return
    raise NotInstalled("no statement holds the change")
