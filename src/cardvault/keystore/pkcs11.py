"""The ``pkcs11`` master-key provider: the master key is an AES-256 key inside an HSM.

The key is generated in the token as sensitive and non-extractable, so it never exists
outside the HSM: every seal and every open is one AES-GCM operation in the token (DESIGN
§3.1). ``<data>/keys/master.json`` names the provider, the token and the key, and holds a
check blob sealed under the key when it was made, so that a wrong token or key is refused
at start rather than at the first card that does not open.

One PKCS#11 session serves the process, behind a lock: an operation is an init/final pair
on a session, so threads must not interleave on one. A session the HSM dropped (restart,
network) is opened again once before an operation fails.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from cardvault.errors import IntegrityError, InvalidInput, NotSetUp
from cardvault.keystore.files import write_private
from cardvault.keystore.provider import MasterKey, pack, read_description, unpack
from cardvault.keystore.ring import DescribedKeyStore

PROVIDER = "pkcs11"
NONCE_BYTES = 12
_CHECK_PLAINTEXT = b"cardvault master key check v1"
_CHECK_AAD = b"cardvault:master-key-check"
#: the HSM (or its connection) went away under a session: open a new one and try again
_SESSION_GONE = (p11.SessionHandleInvalid, p11.SessionClosed, p11.DeviceRemoved)
T = TypeVar("T")


class KeyProviderUnavailable(NotSetUp):
    """The HSM cannot be used: module, token, PIN or key."""

    code = "key_provider_unavailable"


@dataclass(frozen=True, kw_only=True)
class Pkcs11Config:
    module: Path
    token_label: str
    pin: str = field(repr=False)
    key_label: str = "cardvault-master"


class TokenKey:
    """A key in the token behind the one session this process keeps for it: an operation
    holds the lock (it is an init/final pair on the session, so threads must not
    interleave), and a session the HSM dropped is opened again once before it fails."""

    def __init__(self, config: Pkcs11Config, find: Callable[[Any, Pkcs11Config], Any]) -> None:
        self._config = config
        self._find = find
        self._lock = threading.Lock()
        self._session: Any = None
        self._key: Any = None

    def connect(self) -> None:
        """Open the session and find the key now (rather than at the first operation)."""
        with self._lock:
            self._connect()

    def call(self, operation: Callable[[Any], T]) -> T:
        """``operation`` on the key's handle, under the lock."""
        with self._lock:
            if self._session is None:
                self._connect()
            try:
                return operation(self._key)
            except _SESSION_GONE:
                self._connect()
                return operation(self._key)

    def close(self) -> None:
        """Close the session (the next operation opens another)."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = self._key = None

    def _connect(self) -> None:
        self._session = open_session(self._config)
        self._key = self._find(self._session, self._config)


class Pkcs11MasterKey(TokenKey):
    """The master key as a handle in the token; implements the MasterKey port."""

    def __init__(self, config: Pkcs11Config, mk_version: int, key_id: str) -> None:
        super().__init__(config, find_key)
        self._mk_version = mk_version
        self._key_id = key_id
        self.connect()

    @property
    def mk_version(self) -> int:
        return self._mk_version

    @property
    def key_id(self) -> str:
        return self._key_id

    def seal(self, plaintext: bytes | bytearray, *, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        params = pkcs11.GCMParams(nonce, aad)
        body = self.call(
            lambda key: key.encrypt(
                bytes(plaintext), mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
        )
        return pack(self.mk_version, nonce + bytes(body))

    def open(self, blob: bytes, *, aad: bytes) -> bytearray:
        version, body = unpack(blob)
        if version != self.mk_version:
            raise IntegrityError(f"Sealed under master key version {version}, not ours.")
        if len(body) < NONCE_BYTES + 16:
            raise IntegrityError("A sealed blob is truncated.")
        params = pkcs11.GCMParams(body[:NONCE_BYTES], aad)
        try:
            plain = self.call(
                lambda key: key.decrypt(
                    body[NONCE_BYTES:], mechanism=Mechanism.AES_GCM, mechanism_param=params
                )
            )
        except KeyProviderUnavailable:
            raise
        except p11.PKCS11Error as exc:
            # HSMs report a failed tag as CKR_ENCRYPTED_DATA_INVALID, SoftHSM as a general error
            raise IntegrityError("A sealed blob does not open under the master key.") from exc
        return bytearray(plain)


def load_library(module: Path) -> Any:
    try:
        return pkcs11.lib(str(module))
    except (p11.PKCS11Error, OSError, RuntimeError) as exc:
        raise KeyProviderUnavailable(
            f"The PKCS#11 module {module} could not be loaded.",
            remedy="Set CARDVAULT_PKCS11_MODULE to the HSM vendor's PKCS#11 library.",
        ) from exc


def open_session(config: Pkcs11Config, *, rw: bool = False) -> Any:
    """A logged-in session on the configured token."""
    lib = load_library(config.module)
    try:
        token = lib.get_token(token_label=config.token_label)
    except p11.NoSuchToken as exc:
        raise KeyProviderUnavailable(
            f"The HSM has no token labelled {config.token_label!r}.",
            remedy="Check CARDVAULT_PKCS11_TOKEN_LABEL and that the HSM is reachable.",
        ) from exc
    try:
        return token.open(user_pin=config.pin, rw=rw)
    except p11.UserAlreadyLoggedIn:
        return token.open(rw=rw)  # the login of another session of this process holds
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange) as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} refused the PIN.",
            remedy="Check the PIN in CARDVAULT_PKCS11_PIN_FILE (or CARDVAULT_PKCS11_PIN).",
        ) from exc
    except p11.PinLocked as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} has locked its user PIN.",
            remedy="Have the HSM's security officer unlock it.",
        ) from exc
    except p11.PKCS11Error as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} could not be opened ({type(exc).__name__})."
        ) from exc


def find_key(session: Any, config: Pkcs11Config) -> Any:
    """The master key (an AES key) in the token."""
    return find_one(
        session,
        config,
        f"AES key labelled {config.key_label!r}",
        missing="Check CARDVAULT_PKCS11_KEY_LABEL, or restore the key in the HSM.",
        several="Give each installation's master key its own label.",
        object_class=ObjectClass.SECRET_KEY,
        key_type=KeyType.AES,
    )


def find_one(
    session: Any,
    config: Pkcs11Config,
    what: str,
    *,
    missing: str,
    several: str | None = None,
    **attributes: Any,
) -> Any:
    """The one key labelled ``config.key_label`` with ``attributes`` in the token; none, or
    several, is KeyProviderUnavailable (``what`` names it, ``missing``/``several`` say what
    to do)."""
    try:
        return session.get_key(label=config.key_label, **attributes)
    except p11.NoSuchKey as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} has no {what}.", remedy=missing
        ) from exc
    except p11.MultipleObjectsReturned as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} has several keys labelled {config.key_label!r}.",
            remedy=several,
        ) from exc


class Pkcs11KeyStore(DescribedKeyStore):
    """The provider's description in ``<data>/keys`` and the key in the token."""

    def __init__(self, keys_dir: Path, config: Pkcs11Config) -> None:
        self.keys_dir = keys_dir
        self.config = config

    def is_sealed(self) -> bool:
        return False  # the HSM holds the key; there is nothing to unseal

    def create(self) -> Pkcs11MasterKey:
        """Generate the master key inside the token (``cardvault init``); refuses to reuse or
        overwrite a key: each installation has its own label."""
        if self.exists():
            raise InvalidInput(f"A master key already exists in {self.keys_dir}.")
        master = self._generate(self.config, 1)
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._describe([self._entry(master, self.config.key_label)])
        return master

    def _generate(self, config: Pkcs11Config, version: int) -> Pkcs11MasterKey:
        session = open_session(config, rw=True)
        try:
            found = list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: config.key_label}
                )
            )
            if found:
                raise InvalidInput(
                    f"The token {config.token_label!r} already holds a key labelled "
                    f"{config.key_label!r}.",
                    remedy="Choose another CARDVAULT_PKCS11_KEY_LABEL for this installation.",
                )
            key_id = secrets.token_hex(8)
            session.generate_key(
                KeyType.AES,
                256,
                label=config.key_label,
                id=bytes.fromhex(key_id),
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False,
                },
            )
        finally:
            session.close()
        return Pkcs11MasterKey(config, version, key_id)

    def _entry(self, master: Pkcs11MasterKey, label: str) -> dict[str, Any]:
        check = master.seal(_CHECK_PLAINTEXT, aad=_CHECK_AAD)
        return {
            "mk_version": master.mk_version,
            "key_id": master.key_id,
            "key_label": label,
            "check": base64.b64encode(check).decode(),
        }

    def _describe(self, entries: list[dict[str, Any]]) -> None:
        description = {
            "format": 1,
            "provider": PROVIDER,
            "token_label": self.config.token_label,
            **entries[0],
        }
        if len(entries) > 1:
            description["older"] = entries[1:]
        write_private(self.info_file, json.dumps(description, indent=2).encode())

    def _entries(self) -> list[dict[str, Any]]:
        info = read_description(self.info_file, PROVIDER)
        head: dict[str, Any] = {k: info[k] for k in ("mk_version", "key_id", "check") if k in info}
        older = info.get("older", [])
        if not isinstance(older, list):
            raise IntegrityError(f"{self.info_file} is damaged: it is not a key description.")
        return [head, *older]

    def _load_versions(self) -> tuple[dict[int, MasterKey], int]:
        entries = self._entries()
        versions: dict[int, MasterKey] = {}
        for entry in entries:
            master = self._load_entry(entry)
            versions[master.mk_version] = master
        return versions, int(entries[0]["mk_version"])

    def _load_entry(self, entry: dict[str, Any]) -> Pkcs11MasterKey:
        """The key in the token, checked against this data directory's description."""
        try:
            version, key_id = int(entry["mk_version"]), str(entry["key_id"])
            check = base64.b64decode(str(entry["check"]), validate=True)
            label = self.label_of(version)
        except (KeyError, ValueError, TypeError) as exc:
            raise IntegrityError(
                f"{self.info_file} is damaged: it is not a key description."
            ) from exc
        config = replace(self.config, key_label=label)
        master = Pkcs11MasterKey(config, version, key_id)
        try:
            opened = master.open(check, aad=_CHECK_AAD)
        except IntegrityError as exc:
            master.close()
            raise KeyProviderUnavailable(
                f"The key {label!r} in token {self.config.token_label!r} is not "
                "this data directory's master key.",
                remedy="Check CARDVAULT_PKCS11_TOKEN_LABEL and CARDVAULT_PKCS11_KEY_LABEL.",
            ) from exc
        if not secrets.compare_digest(bytes(opened), _CHECK_PLAINTEXT):
            master.close()
            raise KeyProviderUnavailable("The master key's check blob does not match.")
        return master

    def label_of(self, version: int) -> str:
        """The token label of a version: the configured label, ``-v<N>`` after rotations."""
        return self.config.key_label if version == 1 else f"{self.config.key_label}-v{version}"

    def begin_rotation(self) -> int:
        """A new AES key in the token (label ``<label>-v<N>``) becomes current; the older
        ones stay listed, and usable, until :meth:`finish_rotation`."""
        entries = self._entries()
        version = max(int(e["mk_version"]) for e in entries) + 1
        label = self.label_of(version)
        master = self._generate(replace(self.config, key_label=label), version)
        self._describe([self._entry(master, label), *entries])
        master.close()
        return version

    def finish_rotation(self) -> list[int]:
        """Forget the older versions; their keys are destroyed in the token."""
        entries = self._entries()
        self._describe(entries[:1])
        session = open_session(self.config, rw=True)
        try:
            for entry in entries[1:]:
                label = self.label_of(int(entry["mk_version"]))
                for key in session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
                ):
                    key.destroy()
        finally:
            session.close()
        return [int(e["mk_version"]) for e in entries[1:]]
