"""The local master-key provider on a real file system: split, seal, unseal, refuse."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.databases import TEST_ARGON2

from cardvault.config import Settings
from cardvault.crypto.shamir import ShareMismatch, ShareParameters, ShareTypo, TooFewShares
from cardvault.errors import ServiceSealed
from cardvault.keystore.local import (
    DataDirDamaged,
    LocalKeyStore,
    WrongMasterKey,
    default_runtime_dir,
)
from cardvault.services.system.runtime import keystore_for, open_runtime

AAD = b"test blob"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """A data directory whose unsealed key goes where ``cardvault unseal`` puts it."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    yield Settings(
        data_dir=data,
        database_url=f"sqlite:///{tmp_path / 'cv.db'}",
        **TEST_ARGON2,  # type: ignore[arg-type]
    )
    shutil.rmtree(default_runtime_dir(data), ignore_errors=True)


@pytest.fixture
def store(settings: Settings) -> LocalKeyStore:
    keystore = keystore_for(settings)
    keystore.create()
    return keystore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_split_seals_and_any_k_shares_unseal_the_same_key(store: LocalKeyStore) -> None:
    blob = store.load().seal(b"card record", aad=AAD)
    shares = store.split(shares=5, threshold=3)
    assert len(shares) == 5
    assert not store.key_file.exists()
    assert store.is_sealed()
    with pytest.raises(ServiceSealed, match="sealed") as info:
        store.load()
    assert "cardvault unseal" in (info.value.remedy or "")

    for subset in (shares[:3], shares[2:], [shares[4], shares[0], shares[2]]):
        info_after = store.unseal(subset)
        assert info_after.key_id == store.info().key_id
        assert bytes(store.load().open(blob, aad=AAD)) == b"card record"
        store.seal()
        assert store.is_sealed()
        assert not store.runtime_file.exists()


def test_k_minus_one_shares_fail_clearly_and_write_nothing(store: LocalKeyStore) -> None:
    shares = store.split(shares=5, threshold=3)
    with pytest.raises(TooFewShares, match=r"^2 shares given, 3 needed$"):
        store.unseal(shares[:2])
    with pytest.raises(ShareTypo, match="share 3 has a typo"):
        store.unseal([shares[0], shares[1], shares[2][:-4] + "AAAA"])
    assert not store.runtime_file.exists()
    assert store.is_sealed()


def test_shares_of_another_installation_are_refused(store: LocalKeyStore, tmp_path: Path) -> None:
    other = LocalKeyStore(tmp_path / "other" / "keys", tmp_path / "other" / "run")
    other.create()
    theirs = other.split(shares=3, threshold=2)
    mine = store.split(shares=3, threshold=2)
    with pytest.raises(WrongMasterKey, match="do not rebuild this data directory's master key"):
        store.unseal(theirs[:2])
    with pytest.raises(ShareMismatch, match="different keys"):
        store.unseal([mine[0], theirs[1]])
    assert store.is_sealed()
    other.unseal(theirs[1:])
    assert other.load().key_id == other.info().key_id != store.info().key_id


def test_unsealed_key_is_0600_in_a_0700_folder(store: LocalKeyStore) -> None:
    shares = store.split(shares=3, threshold=2)
    store.unseal(shares[:2])
    assert _mode(store.runtime_file) == 0o600
    assert _mode(store.runtime_dir) == 0o700
    assert _mode(store.keys_dir) == 0o700
    assert _mode(store.info_file) == 0o600
    if Path("/dev/shm").is_dir():
        assert store.runtime_dir.parent == Path("/dev/shm")


def test_unseal_takes_back_a_loose_runtime_folder(store: LocalKeyStore) -> None:
    shares = store.split(shares=3, threshold=2)
    store.runtime_dir.mkdir()
    store.runtime_dir.chmod(0o777)
    store.unseal(shares[:2])
    assert _mode(store.runtime_dir) == 0o700
    assert _mode(store.runtime_file) == 0o600


def test_unseal_refuses_a_symlinked_runtime_folder(store: LocalKeyStore, tmp_path: Path) -> None:
    shares = store.split(shares=3, threshold=2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    store.runtime_dir.symlink_to(elsewhere)
    try:
        with pytest.raises(DataDirDamaged, match="not a private folder"):
            store.unseal(shares[:2])
        assert list(elsewhere.iterdir()) == []
    finally:
        store.runtime_dir.unlink()


def test_open_runtime_refuses_to_start_sealed(settings: Settings, store: LocalKeyStore) -> None:
    shares = store.split(shares=3, threshold=2)
    with pytest.raises(ServiceSealed):
        open_runtime(settings, migrate=True)
    assert not Path(settings.resolved_database_url.removeprefix("sqlite:///")).exists()
    store.unseal(shares[1:])
    rt = open_runtime(settings, migrate=True)
    try:
        assert rt.master_key.key_id == store.info().key_id
    finally:
        rt.close()
    store.seal()
    with pytest.raises(ServiceSealed):
        open_runtime(settings)


def test_keep_local_key_leaves_the_service_unsealed(store: LocalKeyStore) -> None:
    before = store.key_file.read_bytes()
    shares = store.split(shares=2, threshold=2, remove_local=False)
    assert store.key_file.read_bytes() == before
    assert not store.is_sealed()
    store.unseal(shares)
    assert store.runtime_file.read_bytes() == before


@pytest.mark.parametrize(("shares", "threshold"), [(2, 3), (1, 1), (256, 2), (3, 0)])
def test_bad_split_parameters_keep_the_key_on_disk(
    store: LocalKeyStore, shares: int, threshold: int
) -> None:
    with pytest.raises(ShareParameters):
        store.split(shares=shares, threshold=threshold)
    assert store.key_file.exists()
    assert not store.is_sealed()


def test_split_when_sealed_is_refused(store: LocalKeyStore) -> None:
    store.split(shares=3, threshold=2)
    with pytest.raises(ServiceSealed):
        store.split(shares=3, threshold=2)


def test_a_runtime_key_of_another_installation_is_refused(
    store: LocalKeyStore, tmp_path: Path
) -> None:
    store.split(shares=3, threshold=2)
    other = LocalKeyStore(tmp_path / "other" / "keys", tmp_path / "other" / "run")
    other.create()
    store.runtime_dir.mkdir(mode=0o700)
    shutil.copy(other.key_file, store.runtime_file)
    with pytest.raises(DataDirDamaged, match="does not hold this data directory's master key"):
        store.load()


def test_create_refuses_to_overwrite_a_master_key(store: LocalKeyStore) -> None:
    before = store.key_file.read_bytes()
    with pytest.raises(Exception, match="already exists"):
        store.create()
    assert store.key_file.read_bytes() == before
    assert os.access(store.key_file, os.R_OK)
