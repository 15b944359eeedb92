"""The ``local`` master-key provider: a 256-bit key kept on disk or split among custodians.

States, as files under ``<data>/keys``:

* ``master.json`` — always: format, key version, key id and a check value (HMAC of a
  constant under the key) so that a combined key can be recognised as the right one.
* ``master.key`` — the key itself (0600). Present after ``init`` (the development default);
  ``cardvault keys split`` prints Shamir shares and removes it: the service is then *sealed*.
* ``<runtime>/master.key`` — written by ``cardvault unseal`` from K shares, on a RAM-backed
  file system (``/dev/shm`` by default), removed by ``cardvault seal`` or a reboot.

While the key is rotated (``cardvault keys rotate-master``) ``master.json`` also lists the
older version(s) under ``older``, and each version's key is in ``master-v<N>.key`` beside
``master.key`` (which holds the current one); a key is recognised by its check value, so a
rotation interrupted between any two file writes still loads.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardvault.crypto import aead, shamir
from cardvault.errors import IntegrityError, InvalidInput, ServiceSealed
from cardvault.keystore.files import shred as _shred
from cardvault.keystore.files import write_private as _write_private
from cardvault.keystore.provider import (
    DataDirDamaged,
    MasterKey,
    pack,
    read_description,
    unpack,
)
from cardvault.keystore.ring import DescribedKeyStore

_CHECK_LABEL = b"cardvault master key check v1"
KEY_BYTES = 32


class WrongMasterKey(InvalidInput):
    code = "wrong_master_key"


@dataclass(frozen=True, kw_only=True)
class KeyInfo:
    mk_version: int
    key_id: str
    check: str


class LocalMasterKey:
    """An unsealed master key in memory; implements the MasterKey port."""

    def __init__(self, key: bytes, info: KeyInfo) -> None:
        self._key = bytes(key)
        self._info = info

    @property
    def mk_version(self) -> int:
        return self._info.mk_version

    @property
    def key_id(self) -> str:
        return self._info.key_id

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes:
        return pack(self.mk_version, aead.seal(self._key, plaintext, aad))

    def open(self, blob: bytes, *, aad: bytes) -> bytearray:
        version, body = unpack(blob)
        if version != self.mk_version:
            raise IntegrityError(f"Sealed under master key version {version}, not ours.")
        return aead.open_sealed(self._key, body, aad)


def check_value(key: bytes) -> str:
    return hmac.new(key, _CHECK_LABEL, hashlib.sha256).hexdigest()


def default_runtime_dir(data_dir: Path) -> Path:
    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    shm = Path("/dev/shm")  # noqa: S108 - RAM-backed on purpose; a private 0700 folder inside
    return shm / f"cardvault-{tag}" if shm.is_dir() else data_dir / "run"


class LocalKeyStore(DescribedKeyStore):
    """Files of the local provider for one data directory: the key is read from disk
    (development) or the runtime folder (after unseal)."""

    def __init__(self, keys_dir: Path, runtime_dir: Path) -> None:
        self.keys_dir = keys_dir
        self.runtime_dir = runtime_dir

    @property
    def key_file(self) -> Path:
        return self.keys_dir / "master.key"

    @property
    def runtime_file(self) -> Path:
        return self.runtime_dir / "master.key"

    def create(self) -> LocalMasterKey:
        """Generate a new master key (``cardvault init``); refuses to overwrite one."""
        if self.exists():
            raise InvalidInput(f"A master key already exists in {self.keys_dir}.")
        key = secrets.token_bytes(KEY_BYTES)
        check = check_value(key)
        info = KeyInfo(mk_version=1, key_id=check[:16], check=check)
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(self.key_file, base64.b64encode(key) + b"\n")
        _write_private(self.info_file, json.dumps(_info_dict(info), indent=2).encode())
        return LocalMasterKey(key, info)

    def info(self) -> KeyInfo:
        """The current version's description."""
        return self.infos()[0]

    def infos(self) -> list[KeyInfo]:
        """The current version first, then any older one a rotation still needs."""
        raw = read_description(self.info_file, "local")
        try:
            return [_key_info(raw)] + [_key_info(old) for old in raw.get("older", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataDirDamaged(
                f"{self.info_file} is damaged: it is not a key description.",
                remedy="Restore the data directory from a backup.",
            ) from exc

    def is_sealed(self) -> bool:
        return not (self.key_file.exists() or self.runtime_file.exists())

    def load_current(self) -> LocalMasterKey:
        infos = self.infos()
        return LocalMasterKey(self._find_key(infos[0]), infos[0])

    def _load_versions(self) -> tuple[dict[int, MasterKey], int]:
        infos = self.infos()
        versions: dict[int, MasterKey] = {
            info.mk_version: LocalMasterKey(self._find_key(info), info) for info in infos
        }
        return versions, infos[0].mk_version

    def _candidates(self, version: int) -> list[Path]:
        name = f"master-v{version}.key"
        return [self.key_file, self.keys_dir / name, self.runtime_file, self.runtime_dir / name]

    def _find_key(self, info: KeyInfo) -> bytes:
        """The key of one version: whichever candidate file has its check value."""
        for path in self._candidates(info.mk_version):
            if path.exists():
                key = self._read_any(path)
                if key is not None and hmac.compare_digest(check_value(key), info.check):
                    return key
        if info.mk_version != self.info().mk_version:
            raise ServiceSealed(
                f"The master key's version {info.mk_version} is still needed (a rotation is "
                "under way) and is not unsealed.",
                remedy="Run `cardvault unseal` with that version's shares too.",
            )
        present = [p for p in (self.key_file, self.runtime_file) if p.exists()]
        if present:  # name the file that is there, so the operator knows which one is wrong
            raise DataDirDamaged(f"{present[0]} does not hold this data directory's master key.")
        raise ServiceSealed(
            "cardvault is sealed: the master key is split among its custodians.",
            remedy="Run `cardvault unseal` with enough shares, then start it again.",
        )

    @staticmethod
    def _read_any(path: Path) -> bytes | None:
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except ValueError as exc:
            raise DataDirDamaged(f"{path} is damaged.") from exc
        return key if len(key) == KEY_BYTES else None

    def begin_rotation(self) -> int:
        """Make a new version current and keep the old one readable (crash-safe: each
        step leaves files that load). Where the current key is kept — the data directory,
        or the RAM-backed runtime folder after unseal — the new one is kept too."""
        infos = self.infos()
        old = LocalMasterKey(self._find_key(infos[0]), infos[0])
        folder = self.keys_dir if self.key_file.exists() else self.runtime_dir
        key = secrets.token_bytes(KEY_BYTES)
        check = check_value(key)
        new = KeyInfo(
            mk_version=max(i.mk_version for i in infos) + 1, key_id=check[:16], check=check
        )
        _write_private(folder / f"master-v{new.mk_version}.key", base64.b64encode(key) + b"\n")
        _write_private(folder / f"master-v{old.mk_version}.key", base64.b64encode(old._key) + b"\n")
        self._describe([new, *infos])
        _write_private(folder / "master.key", base64.b64encode(key) + b"\n")
        return new.mk_version

    def finish_rotation(self) -> list[int]:
        """Forget every older version (after the re-sealing found none of its blobs)."""
        infos = self.infos()
        self._describe(infos[:1])
        retired = [i.mk_version for i in infos[1:]]
        for version in [*retired, infos[0].mk_version]:  # master.key holds the current one
            for path in self._candidates(version)[1::2]:
                if path.exists():
                    _shred(path)
        return retired

    def _describe(self, infos: list[KeyInfo]) -> None:
        body = _info_dict(infos[0])
        if len(infos) > 1:
            body["older"] = [_info_dict(i, short=True) for i in infos[1:]]
        _write_private(self.info_file, json.dumps(body, indent=2).encode())

    def split(self, *, shares: int, threshold: int, remove_local: bool = True) -> list[str]:
        """Shamir shares for the custodians; by default the service becomes sealed."""
        master = self.load_current()
        parts = shamir.split(master._key, shares=shares, threshold=threshold, key_id=master.key_id)
        if remove_local and self.key_file.exists():
            _shred(self.key_file)
            for copy in self.keys_dir.glob("master-v*.key"):
                _shred(copy)
        return parts

    def unseal(self, shares: list[str]) -> KeyInfo:
        """Combine shares, check them against this key, and keep the key in RAM-backed storage."""
        infos = self.infos()
        secret, key_id = shamir.combine(shares)
        for info in infos:
            if key_id == info.key_id and hmac.compare_digest(check_value(secret), info.check):
                break
        else:
            raise WrongMasterKey(
                "These shares do not rebuild this data directory's master key.",
                remedy="Check that every share belongs to this installation.",
            )
        _private_dir(self.runtime_dir)
        name = "master.key" if info is infos[0] else f"master-v{info.mk_version}.key"
        _write_private(self.runtime_dir / name, base64.b64encode(secret) + b"\n")
        return info

    def seal(self) -> None:
        """Shred the unsealed key(s) and remove the folder ``unseal`` made for them."""
        if self.runtime_file.exists():
            _shred(self.runtime_file)
        for path in self.runtime_dir.glob("master-v*.key") if self.runtime_dir.is_dir() else ():
            _shred(path)
        with contextlib.suppress(OSError):  # already gone, or holds something not ours
            self.runtime_dir.rmdir()


def _private_dir(path: Path) -> None:
    """A 0700 folder of ours. The name in /dev/shm is predictable, so one made by someone
    else (or a symlink) is refused, and mkdir's mode does not fix an existing folder."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise DataDirDamaged(
            f"{path} is not a private folder of this user, so the key is not written there.",
            remedy="Remove it, then run `cardvault unseal` again.",
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


def _key_info(raw: Any) -> KeyInfo:
    return KeyInfo(
        mk_version=int(raw["mk_version"]), key_id=str(raw["key_id"]), check=str(raw["check"])
    )


def _info_dict(info: KeyInfo, *, short: bool = False) -> dict[str, Any]:
    head: dict[str, Any] = {} if short else {"format": 1, "provider": "local"}
    return {**head, "mk_version": info.mk_version, "key_id": info.key_id, "check": info.check}
