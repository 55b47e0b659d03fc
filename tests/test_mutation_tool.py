"""The mutation tool (tests/mutation/, `make mutation`): its mutants are the ones it says, with
ids that survive an edit elsewhere, and a mutant put into a running module changes what every
importer of it sees."""

import ast
import sys
import textwrap
import types

import pytest

from tests.mutation.install import NotInstalled, install
from tests.mutation.operators import mutants, mutate

SOURCE = textwrap.dedent(
    '''
    """A module."""
    import functools

    LIMIT = 10
    TABLE = {"a": (1, 2), "b": (3,)}


    def over(n: int) -> bool:
        """Whether n is over the limit."""
        return n > LIMIT and not n == 99


    @functools.cache
    def biggest(a: int, b: int = 2) -> int:
        return max(a, b) * 2


    class Box:
        size: int = 3

        @property
        def double(self) -> int:
            return self.size + self.size
    '''
)


def changes(source: str) -> list[tuple[str, str]]:
    return [(m.id, m.change.rsplit(": ", 1)[1]) for m in mutants(source)]


def test_each_operator_gives_its_mutants_and_leaves_docstrings_and_annotations_alone():
    assert changes(SOURCE) == [
        ("<module>#1 const", "10 -> 11"),
        ("<module>#2 drop0", "entry 'a' left out"),
        ("<module>#3 drop1", "entry 'b' left out"),
        ("<module>#4 drop0", "entry 1 left out"),
        ("<module>#5 drop1", "entry 2 left out"),
        ("<module>#6 const", "1 -> 2"),
        ("<module>#7 const", "2 -> 3"),
        ("<module>#8 drop0", "entry 3 left out"),
        ("<module>#9 const", "3 -> 4"),
        ("over#1 return", "return x -> return None"),
        ("over#2 bool", "and -> or"),
        ("over#3 cmp0", "> -> >="),
        ("over#4 unary", "not x -> x"),
        ("over#5 cmp0", "== -> !="),
        ("over#6 const", "99 -> 100"),
        ("biggest#1 const", "2 -> 3"),
        ("biggest#2 return", "return x -> return None"),
        ("biggest#3 arith", "* -> /"),
        ("biggest#4 call", "max() -> min()"),
        ("biggest#5 const", "2 -> 3"),
        ("Box#1 const", "3 -> 4"),
        ("Box.double#1 return", "return x -> return None"),
        ("Box.double#2 arith", "+ -> -"),
    ]


def test_an_id_is_unchanged_by_an_edit_to_another_function():
    edited = SOURCE.replace("return max(a, b) * 2", "return max(a, b) * 2 + 0")
    before = {m.id: m.change for m in mutants(SOURCE) if m.id.startswith("over#")}
    after = {m.id: m.change for m in mutants(edited) if m.id.startswith("over#")}
    assert before == after


def test_a_mutant_changes_only_its_node():
    [mutant] = [m for m in mutants(SOURCE) if m.id == "over#3 cmp0"]
    assert "return n >= LIMIT and (not n == 99)" in ast.unparse(mutate(SOURCE, mutant))
    [unary] = [m for m in mutants(SOURCE) if m.id == "over#4 unary"]
    assert "return n > LIMIT and n == 99" in ast.unparse(mutate(SOURCE, unary))


@pytest.fixture
def module(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "mutation_sample.py"
    path.write_text(SOURCE)
    sample = types.ModuleType("mutation_sample")
    sample.__file__ = str(path)
    exec(compile(SOURCE, str(path), "exec"), sample.__dict__)
    sys.modules["mutation_sample"] = sample
    importer = types.ModuleType("mutation_importer")
    importer.over, importer.TABLE = sample.over, sample.TABLE
    sys.modules["mutation_importer"] = importer
    yield sample
    del sys.modules["mutation_sample"], sys.modules["mutation_importer"]


def _install(module, mutant_id: str) -> None:  # type: ignore[no-untyped-def]
    [mutant] = [m for m in mutants(SOURCE) if m.id == mutant_id]
    install(module, SOURCE, mutant)


def test_a_mutated_function_is_seen_by_its_importers(module):
    importer = sys.modules["mutation_importer"]
    assert importer.over(10) is False
    _install(module, "over#3 cmp0")
    assert importer.over(10) is True


def test_a_cached_function_is_mutated_and_its_cache_emptied(module):
    assert module.biggest(3) == 6
    _install(module, "biggest#4 call")
    assert module.biggest(3) == 4


def test_a_table_is_changed_in_place_and_a_constant_rebound(module):
    importer = sys.modules["mutation_importer"]
    assert module.over(11) is True
    _install(module, "<module>#2 drop0")
    assert importer.TABLE == {"b": (3,)}
    _install(module, "<module>#1 const")
    assert module.over(11) is False and module.over(12) is True  # LIMIT is now 11


def test_a_property_and_a_class_default_are_mutated(module):
    box = module.Box()
    _install(module, "Box.double#2 arith")
    assert box.double == 0
    _install(module, "Box#1 const")
    assert module.Box().size == 4


def test_a_change_it_cannot_move_is_reported_not_scored(module):
    source = SOURCE + "\nif LIMIT > 5:\n    EXTRA = 1\n"
    [mutant] = [m for m in mutants(source) if m.change.endswith("> -> >=")][-1:]
    with pytest.raises(NotInstalled):
        install(module, source, mutant)
