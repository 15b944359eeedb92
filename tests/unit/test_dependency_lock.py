"""The environment the tests run in is the one the committed lock describes.

`make run`, `make test` and CI install from requirements/*.txt (with hashes). These checks fail
when the virtual environment has drifted from the lock (a package upgraded by hand, a stale
venv) or when pyproject.toml asks for something the lock does not provide (a dependency added
without `make lock`).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUN_LOCK = ROOT / "requirements" / "run.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"


def _pins(lock: Path) -> dict[str, str]:
    """Name -> version of every requirement the lock selects for this interpreter."""
    pins: dict[str, str] = {}
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip("\\").strip()
        if not line or line.startswith(("#", "--")):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"{lock.name}: {line!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        declared += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in declared if r.marker is None or r.marker.evaluate()]


def test_installed_versions_match_the_test_lock() -> None:
    drift = []
    for name, version in sorted(_pins(TEST_LOCK).items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            drift.append(f"{name}: not installed (lock: {version})")
            continue
        if installed != version:
            drift.append(f"{name}: {installed} installed, {version} locked")
    assert not drift, "The venv differs from requirements/test.txt: " + "; ".join(drift)


def test_the_run_lock_is_the_test_lock_without_the_test_tools() -> None:
    run, test = _pins(RUN_LOCK), _pins(TEST_LOCK)
    differ = {n: (v, test.get(n)) for n, v in run.items() if test.get(n) != v}
    assert not differ, f"requirements/run.txt and test.txt disagree: {differ}"


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    for lock, extras in ((RUN_LOCK, ()), (TEST_LOCK, ("test",))):
        pins = _pins(lock)
        for req in _declared(*extras):
            name = canonicalize_name(req.name)
            assert name in pins, f"{req} is in pyproject.toml but not in {lock.name}: make lock"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{lock.name} pins {name}=={pins[name]}, outside {req}: make lock"
            )
