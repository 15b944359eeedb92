"""The vendored axe-core is the one its VERSION file names, unchanged (the browser tier's
accessibility check runs it; scripts/update-axe-core replaces both together)."""

from __future__ import annotations

import hashlib

from tests.support.a11y import AXE_VERSION, VENDOR


def test_the_vendored_axe_core_matches_its_recorded_digest_and_version() -> None:
    version, digest, integrity = (VENDOR / "VERSION").read_text().split()
    source = (VENDOR / "axe.min.js").read_bytes()
    assert digest == "sha256:" + hashlib.sha256(source).hexdigest()
    assert integrity.startswith("npm-integrity:sha512-")
    assert version == AXE_VERSION
    assert source.startswith(f"/*! axe v{version}".encode())
    assert b"Mozilla Public" in (VENDOR / "LICENSE").read_bytes()
