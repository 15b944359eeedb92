"""tests/unit/ mirrors src/cardvault/: the tests of ``<package>/<module>.py`` are
``tests/unit/<package>/test_<module>.py`` (or ``test_<module>_<aspect>.py``), so the tests of
any module are found from its path alone, and a test left behind by a move fails here."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "tests" / "unit"
SOURCE = ROOT / "src" / "cardvault"
#: tests of the repository rather than of a module: they stay at the top of tests/unit
REPOSITORY = {
    "test_architecture.py",
    "test_benches.py",
    "test_dependency_lock.py",
    "test_docs_links.py",
    "test_documented_commands.py",
    "test_mirror.py",
    "test_packaging.py",
    "test_vendored_axe.py",
}


def _subject(test: Path) -> str | None:
    """Why ``test`` is out of place, or None when a module of src/cardvault matches it."""
    folder = SOURCE / test.parent.relative_to(UNIT)
    if not (folder / "__init__.py").exists():
        return f"src/cardvault/{test.parent.relative_to(UNIT).as_posix()} is not a package"
    name = test.stem.removeprefix("test_")
    modules = {p.stem for p in folder.glob("*.py")} | {
        p.parent.name for p in folder.glob("*/__init__.py")
    }
    if any(name == m or name.startswith(f"{m}_") for m in modules - {"__init__"}):
        return None
    return f"no module {folder.relative_to(ROOT).as_posix()}/{name}.py (nor a prefix of it)"


def test_every_unit_test_sits_beside_the_path_of_what_it_tests() -> None:
    tests = sorted(UNIT.rglob("test_*.py"))
    assert len(tests) > 40
    misplaced = [
        f"{t.relative_to(ROOT)}: {why}"
        for t in tests
        if t.name not in REPOSITORY or t.parent != UNIT
        if (why := _subject(t)) is not None
    ]
    assert misplaced == []
