"""The mutants of one module: every small change to its syntax tree that a test should notice.

Each mutant is one node changed in place: a comparison's boundary or sense (`<` to `<=`,
`==` to `!=`, `is` to `is not`, `in` to `not in`), `and` to `or`, an arithmetic operator
(`+` and `-`, `*` and `/`), a whole number or a numeric Decimal string plus one, `True` and
`False`, `not x` to `x`, `-x` to `x`, `min` and `max`, and a returned value to None.
Docstrings and type annotations are left alone. The walk is in source order, so the same
source gives the same mutants with the same ids: `scope#n op`, where scope is the enclosing
function's (or class's) qualified name, `<module>` at the top, and n counts the scope's
mutants from 1, so an edit to one function leaves every other function's ids alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
}
SYMBOLS: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.And: "and",
    ast.Or: "or",
}
SWAPPED_CALLS = {"min": "max", "max": "min"}


@dataclass(frozen=True)
class Mutant:
    id: str  # "scope#n op", stable while the scope's own code is unchanged
    line: int
    change: str  # what was changed, as source: "a < b: < -> <="
    path: tuple[int, ...]  # the node's position: child indexes from the module down
    # cmpN (the Nth comparison of a chain), dropN (a table's Nth entry), bool, arith, unary,
    # const, call, return
    operator: str


def _numeric_string(node: ast.AST) -> bool:
    """A string constant that is a Decimal's argument and reads as a number: Decimal("0.10")."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return False
    try:
        Decimal(node.value)
    except InvalidOperation:
        return False
    return True


def _children(node: ast.AST) -> list[ast.AST]:
    return list(ast.iter_child_nodes(node))


def _skipped(parent: ast.AST, child: ast.AST) -> bool:
    """Annotations, decorators and docstrings: their mutants test the language, not the law."""
    if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and any(
        child is d for d in parent.decorator_list
    ):
        return True
    if isinstance(parent, ast.arg) and child is parent.annotation:
        return True
    if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef) and child is parent.returns:
        return True
    if isinstance(parent, ast.AnnAssign) and child is parent.annotation:
        return True
    if isinstance(child, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in child.targets
    ):
        return True
    body = getattr(parent, "body", None)
    return bool(
        isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and body
        and child is body[0]
        and isinstance(child, ast.Expr)
        and isinstance(child.value, ast.Constant)
        and isinstance(child.value.value, str)
    )


def _changes(node: ast.AST, parent: ast.AST | None, top_level: bool) -> Iterator[tuple[str, str]]:
    """(operator name, description) for each mutation of `node` itself, in a fixed order."""
    if (
        top_level
        and isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict)
        and not isinstance(parent, ast.Subscript)  # a type's parameters: dict[str, int]
    ):
        # A table (the notice stages, a rule list): each entry left out in turn.
        entries = node.keys if isinstance(node, ast.Dict) else node.elts
        for index, entry in enumerate(entries):
            text = ast.unparse(entry) if entry is not None else "**"
            yield f"drop{index}", f"entry {' '.join(text.split())[:40]} left out"
    if isinstance(node, ast.Compare):
        for index, op in enumerate(node.ops):
            if type(op) in COMPARISONS:
                new = COMPARISONS[type(op)]
                yield (
                    f"cmp{index}",
                    f"{SYMBOLS[type(op)]} -> {SYMBOLS[new]}",
                )
    elif isinstance(node, ast.BoolOp):
        other = "or" if isinstance(node.op, ast.And) else "and"
        yield "bool", f"{SYMBOLS[type(node.op)]} -> {other}"
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in ARITHMETIC:
        yield "arith", f"{SYMBOLS[type(node.op)]} -> {SYMBOLS[ARITHMETIC[type(node.op)]]}"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        yield "unary", f"{'not' if isinstance(node.op, ast.Not) else '-'} x -> x"
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            yield "const", f"{node.value} -> {not node.value}"
        elif isinstance(node.value, int):
            yield "const", f"{node.value} -> {node.value + 1}"
        elif (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Name)
            and parent.func.id == "Decimal"
            and _numeric_string(node)
        ):
            assert isinstance(node.value, str)
            yield "const", f'"{node.value}" -> "{Decimal(node.value) + 1}"'
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in SWAPPED_CALLS
    ):
        yield "call", f"{node.func.id}() -> {SWAPPED_CALLS[node.func.id]}()"
    elif (
        isinstance(node, ast.Return)
        and node.value is not None
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        yield "return", "return x -> return None"


def _apply(node: ast.AST, operator: str) -> None:
    """Change `node` in place as `operator` says."""
    if operator.startswith("drop"):
        index = int(operator[4:])
        if isinstance(node, ast.Dict):
            del node.keys[index], node.values[index]
        else:
            assert isinstance(node, ast.Tuple | ast.List | ast.Set)
            del node.elts[index]
    elif operator.startswith("cmp"):
        assert isinstance(node, ast.Compare)
        index = int(operator[3:])
        node.ops[index] = COMPARISONS[type(node.ops[index])]()
    elif operator == "bool":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif operator == "arith":
        assert isinstance(node, ast.BinOp | ast.AugAssign)
        node.op = ARITHMETIC[type(node.op)]()
    elif operator == "unary":
        raise AssertionError("replaced by its parent")  # see mutate(): needs the parent
    elif operator == "const":
        assert isinstance(node, ast.Constant)
        if isinstance(node.value, bool):
            node.value = not node.value
        elif isinstance(node.value, int):
            node.value += 1
        else:
            node.value = str(Decimal(node.value) + 1)
    elif operator == "call":
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        node.func.id = SWAPPED_CALLS[node.func.id]
    elif operator == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(value=None)


def _scope_name(stack: list[str]) -> str:
    return ".".join(stack) or "<module>"


def mutants(source: str) -> list[Mutant]:
    """Every mutant of a module's source, in source order, with stable ids."""
    tree = ast.parse(source)
    found: list[Mutant] = []
    counts: dict[str, int] = {}

    def walk(
        node: ast.AST, parent: ast.AST | None, path: tuple[int, ...], scope: list[str]
    ) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = [*scope, node.name]
        name = _scope_name(scope)
        for operator, change in _changes(node, parent, not scope):
            counts[name] = counts.get(name, 0) + 1
            line = getattr(node, "lineno", 0)
            text = ast.get_source_segment(source, node) or ""
            found.append(
                Mutant(
                    id=f"{name}#{counts[name]} {operator}",
                    line=line,
                    change=f"{' '.join(text.split())[:80]}: {change}",
                    path=path,
                    operator=operator,
                )
            )
        for index, child in enumerate(_children(node)):
            if not _skipped(node, child):
                walk(child, node, (*path, index), scope)

    walk(tree, None, (), [])
    return found


def _field_holding(parent: ast.AST, child: ast.AST) -> tuple[str, int | None]:
    for field, value in ast.iter_fields(parent):
        if value is child:
            return field, None
        if isinstance(value, list):
            for index, item in enumerate(value):
                if item is child:
                    return field, index
    raise LookupError(child)


def mutate(source: str, mutant: Mutant) -> ast.Module:
    """The module's tree with `mutant`'s one change made."""
    tree = ast.parse(source)
    *_, parent, node = chain(tree, mutant.path)
    if mutant.operator == "unary":
        assert isinstance(node, ast.UnaryOp)
        field, position = _field_holding(parent, node)
        if position is None:
            setattr(parent, field, node.operand)
        else:
            getattr(parent, field)[position] = node.operand
    else:
        _apply(node, mutant.operator)
    return ast.fix_missing_locations(tree)


def chain(tree: ast.Module, path: tuple[int, ...]) -> list[ast.AST]:
    """The nodes from the module down to the one at `path`."""
    nodes: list[ast.AST] = [tree]
    for index in path:
        nodes.append(_children(nodes[-1])[index])
    return nodes
