"""``make run`` installs cardvault (``pip install -e .``) without setuptools warnings.

Setuptools warns about outdated ``pyproject.toml`` fields (a license table instead of an SPDX
expression, license classifiers, ...) while it prepares the package's metadata; with
``-W error`` any such warning fails the build here instead of scrolling past a newcomer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREPARE = """
import tempfile
import setuptools.build_meta as backend
print(backend.prepare_metadata_for_build_editable(tempfile.mkdtemp()))
"""


@pytest.mark.slow
def test_the_editable_install_prepares_its_metadata_without_warnings() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PREPARE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    assert done.stdout.strip().endswith(".dist-info")
