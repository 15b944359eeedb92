"""A software CTAP2 authenticator for the tests, speaking the real protocol.

It sits behind python-fido2's device interface (``fido2.ctap.CtapDevice``) and answers
CTAPHID_CBOR messages the way a USB security key does, so ``fido2.ctap2.Ctap2`` and
``fido2.client.Fido2Client`` drive it exactly as they drive hardware. The CBOR
commands, the authenticator data layout, the COSE keys and PIN/UV auth protocols 1 and 2
are written here from the CTAP 2.1 specification (not borrowed from fido2), so the two
sides of a test are independent implementations.

Spec: FIDO Client to Authenticator Protocol v2.1, §6 (authenticator API), §6.5 (PIN/UV).

Knobs a test turns to simulate the world: ``presence`` (touch / refuse / ignore),
``unplug()``, ``clone()`` (a copied key whose counters restart), ``pin=`` and
``client_pin=`` (PIN set, unset, unsupported), ``attestation=`` ("packed" self
attestation or "none"), ``counter=False`` (a key that always reports 0).
"""

from __future__ import annotations

import copy
import errno
import hashlib
import hmac
import secrets
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum, IntFlag
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2 import cbor
from fido2.ctap import STATUS, CtapDevice, CtapError
from fido2.hid import CAPABILITY, CTAPHID

ERR = CtapError.ERR
#: AAGUID the soft authenticator reports unless told otherwise (random, fixed for the tests)
SOFT_AAGUID = bytes.fromhex("5c0f7a3e9d2b4e61a8f1c3b5d7e90214")
MAX_PIN_RETRIES = 8
MAX_CONSECUTIVE_PIN_FAILURES = 3  # then the key wants a power cycle (PIN_AUTH_BLOCKED)
ES256 = -7


class Cmd(IntEnum):
    """authenticator API command bytes (§6)."""

    MAKE_CREDENTIAL = 0x01
    GET_ASSERTION = 0x02
    GET_INFO = 0x04
    CLIENT_PIN = 0x06
    GET_NEXT_ASSERTION = 0x08
    SELECTION = 0x0B


class PinSub(IntEnum):
    """authenticatorClientPIN sub-commands (§6.5.5)."""

    GET_PIN_RETRIES = 0x01
    GET_KEY_AGREEMENT = 0x02
    SET_PIN = 0x03
    GET_PIN_TOKEN = 0x05
    GET_TOKEN_USING_PIN_WITH_PERMISSIONS = 0x09


class Flag(IntFlag):
    """authenticator data flags (WebAuthn §6.1)."""

    UP = 0x01
    UV = 0x04
    AT = 0x40


class Permission(IntFlag):
    NONE = 0
    MAKE_CREDENTIAL = 0x01
    GET_ASSERTION = 0x02


class Presence(Enum):
    """What the simulated person does when the key blinks."""

    TOUCH = "touch"
    REFUSE = "refuse"  # the key answers OPERATION_DENIED (e.g. a "deny" button, a bio mismatch)
    IGNORE = "ignore"  # nobody touches: the platform cancels, or the key times out


# --- PIN/UV auth protocols (§6.5.6, §6.5.7) ------------------------------------------


def _hkdf(z: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\0" * 32, info=info).derive(z)


def _cbc(key: bytes, iv: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(iv))


class PinProtocol:
    """One PIN/UV auth protocol: version 1 (SHA-256, zero IV, 16-byte MACs) or 2 (HKDF)."""

    def __init__(self, version: int) -> None:
        self.version = version

    def kdf(self, z: bytes) -> bytes:
        if self.version == 1:
            return hashlib.sha256(z).digest()
        return _hkdf(z, b"CTAP2 HMAC key") + _hkdf(z, b"CTAP2 AES key")

    def encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        if self.version == 1:
            enc = _cbc(key, b"\0" * 16).encryptor()
            return enc.update(plaintext) + enc.finalize()
        iv = secrets.token_bytes(16)
        enc = _cbc(key[32:], iv).encryptor()
        return iv + enc.update(plaintext) + enc.finalize()

    def decrypt(self, key: bytes, ciphertext: bytes) -> bytes:
        aes_key, iv = (key, b"\0" * 16) if self.version == 1 else (key[32:], ciphertext[:16])
        body = ciphertext if self.version == 1 else ciphertext[16:]
        if not body or len(body) % 16:
            raise CtapError(ERR.INVALID_PARAMETER)
        dec = _cbc(aes_key, iv).decryptor()
        return dec.update(body) + dec.finalize()

    def authenticate(self, key: bytes, message: bytes) -> bytes:
        mac = hmac.new(key if self.version == 1 else key[:32], message, "sha256").digest()
        return mac[:16] if self.version == 1 else mac

    def verify(self, key: bytes, message: bytes, signature: bytes) -> None:
        if not hmac.compare_digest(self.authenticate(key, message), signature):
            raise CtapError(ERR.PIN_AUTH_INVALID)


# --- stored state ----------------------------------------------------------------------


@dataclass
class SoftCredential:
    """A credential the key holds (a real key would wrap non-resident ones into the id)."""

    credential_id: bytes
    rp_id: str
    user: dict[str, Any]
    private_key: ec.EllipticCurvePrivateKey
    resident: bool
    sign_count: int = 0


@dataclass
class _PinState:
    pin_hash: bytes | None = None  # LEFT(SHA-256(pin), 16), as the spec stores it
    retries: int = MAX_PIN_RETRIES
    consecutive_failures: int = 0
    token: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    permissions: Permission = Permission.NONE
    rp_id: str | None = None


def _cose_es256(public_key: ec.EllipticCurvePublicKey, alg: int = ES256) -> dict[int, Any]:
    numbers = public_key.public_numbers()
    return {
        1: 2,
        3: alg,
        -1: 1,
        -2: numbers.x.to_bytes(32, "big"),
        -3: numbers.y.to_bytes(32, "big"),
    }


def _require(params: Mapping[int, Any], *keys: int) -> list[Any]:
    if any(k not in params for k in keys):
        raise CtapError(ERR.MISSING_PARAMETER)
    return [params[k] for k in keys]


class SoftCtap2Device(CtapDevice):
    """A CTAP2.1 security key in memory: ES256 credentials, client PIN, sign counters."""

    def __init__(
        self,
        *,
        aaguid: bytes = SOFT_AAGUID,
        pin: str | None = None,
        client_pin: bool = True,
        resident_keys: bool = True,
        attestation: Literal["packed", "none"] = "packed",
        counter: bool = True,
        pin_protocols: tuple[int, ...] = (2, 1),
        touch_wait: float = 2.0,
    ) -> None:
        self.aaguid = aaguid
        self.client_pin_supported = client_pin
        self.resident_keys = resident_keys
        self.attestation = attestation
        self.counter = counter
        self.pin_protocols = pin_protocols
        self.touch_wait = touch_wait
        self.presence = Presence.TOUCH
        self.plugged_in = True
        self.credentials: list[SoftCredential] = []
        self.touches = 0
        self._pin = _PinState(pin_hash=_pin_hash(pin) if pin else None)
        self._key_agreement = ec.generate_private_key(ec.SECP256R1())
        self._pending: list[tuple[SoftCredential, bytes, Flag]] = []

    # --- CtapDevice ------------------------------------------------------------------

    @property
    def capabilities(self) -> int:
        return CAPABILITY.CBOR | CAPABILITY.NMSG

    def call(
        self,
        cmd: int,
        data: bytes = b"",
        event: threading.Event | None = None,
        on_keepalive: Callable[[STATUS], None] | None = None,
    ) -> bytes:
        if not self.plugged_in:
            raise OSError(errno.ENODEV, "No such device")  # what a vanished hidraw node gives
        if cmd != CTAPHID.CBOR or not data:
            raise CtapError(ERR.INVALID_COMMAND)  # the HID layer's CTAPHID_ERROR
        try:
            params = cbor.decode(data[1:]) if len(data) > 1 else {}
        except (ValueError, IndexError, KeyError, struct.error):
            return bytes([ERR.INVALID_CBOR])
        if not isinstance(params, Mapping):
            return bytes([ERR.CBOR_UNEXPECTED_TYPE])
        try:
            response = self._dispatch(data[0], params, event, on_keepalive)
        except CtapError as e:
            return bytes([e.code])
        return b"\0" + (cbor.encode(response) if response else b"")

    def _dispatch(
        self,
        cmd: int,
        params: Mapping[int, Any],
        event: threading.Event | None,
        on_keepalive: Callable[[STATUS], None] | None,
    ) -> dict[int, Any] | None:
        if cmd == Cmd.MAKE_CREDENTIAL:
            return self._make_credential(params, event, on_keepalive)
        if cmd == Cmd.GET_ASSERTION:
            return self._get_assertion(params, event, on_keepalive)
        if cmd == Cmd.GET_INFO:
            return self._info()
        if cmd == Cmd.CLIENT_PIN:
            return self._client_pin(params)
        if cmd == Cmd.GET_NEXT_ASSERTION:
            return self._next_assertion()
        if cmd == Cmd.SELECTION:
            self._collect_presence(event, on_keepalive)
            return None
        raise CtapError(ERR.INVALID_COMMAND)

    @classmethod
    def list_devices(cls) -> Iterator[SoftCtap2Device]:
        return iter(())

    # --- simulation ------------------------------------------------------------------

    def unplug(self) -> None:
        self.plugged_in = False

    def clone(self) -> SoftCtap2Device:
        """A copy of this key (same credentials and keys) whose sign counters restart at 0."""
        twin = copy.copy(self)
        twin.credentials = [copy.copy(c) for c in self.credentials]
        for cred in twin.credentials:
            cred.sign_count = 0
        twin._pin = copy.copy(self._pin)
        twin._pending = []
        return twin

    @property
    def pin_retries(self) -> int:
        return self._pin.retries

    def power_cycle(self) -> None:
        """Unplug and re-insert: forgets the token and the consecutive-failure count."""
        self._pin.consecutive_failures = 0
        self._pin.token = secrets.token_bytes(32)
        self._pin.permissions = Permission.NONE
        self._key_agreement = ec.generate_private_key(ec.SECP256R1())
        self.plugged_in = True

    # --- authenticatorGetInfo (§6.4) -------------------------------------------------

    def _info(self) -> dict[int, Any]:
        options: dict[str, bool] = {
            "rk": self.resident_keys,
            "up": True,
            "plat": False,
            "makeCredUvNotRqd": True,
        }
        info: dict[int, Any] = {
            1: ["FIDO_2_0", "FIDO_2_1"],
            3: self.aaguid,
            4: options,
            5: 1200,
            7: 8,
            8: 128,
            9: ["usb"],
            10: [{"type": "public-key", "alg": ES256}],
        }
        if self.client_pin_supported:
            options["clientPin"] = self._pin.pin_hash is not None
            options["pinUvAuthToken"] = True
            info[6] = list(self.pin_protocols)
        return info

    # --- user presence ---------------------------------------------------------------

    def _collect_presence(
        self, event: threading.Event | None, on_keepalive: Callable[[STATUS], None] | None
    ) -> None:
        if on_keepalive is not None:
            on_keepalive(STATUS.UPNEEDED)  # the key blinks; the platform says "touch your key"
        if self.presence is Presence.TOUCH:
            self.touches += 1
            return
        if self.presence is Presence.REFUSE:
            raise CtapError(ERR.OPERATION_DENIED)
        if (event or threading.Event()).wait(self.touch_wait):
            raise CtapError(ERR.KEEPALIVE_CANCEL)
        raise CtapError(ERR.USER_ACTION_TIMEOUT)

    def _answer_probe(
        self, event: threading.Event | None, on_keepalive: Callable[[STATUS], None] | None
    ) -> None:
        """A zero-length pinUvAuthParam asks "which key?": blink, then say PIN state (§6.1.2)."""
        self._collect_presence(event, on_keepalive)
        raise CtapError(ERR.PIN_INVALID if self._pin.pin_hash else ERR.PIN_NOT_SET)

    def _check_pin_uv_param(
        self,
        params: Mapping[int, Any],
        keys: tuple[int, int],
        cdh: bytes,
        perm: Permission,
        rp_id: str,
    ) -> bool:
        """Verify pinUvAuthParam over clientDataHash; True when the request is user-verified."""
        param, version = params.get(keys[0]), params.get(keys[1])
        if param is None:
            return False
        if version is None:
            raise CtapError(ERR.MISSING_PARAMETER)
        self._protocol(version).verify(self._pin.token, cdh, param)
        if not self._pin.permissions & perm:
            raise CtapError(ERR.PIN_AUTH_INVALID)
        if self._pin.rp_id is None:
            self._pin.rp_id = rp_id
        elif self._pin.rp_id != rp_id:
            raise CtapError(ERR.PIN_AUTH_INVALID)
        return True

    def _check_options(self, options: Mapping[str, Any], *, make: bool) -> None:
        if options.get("uv"):
            raise CtapError(ERR.INVALID_OPTION)  # no built-in UV: only the PIN verifies
        if make and options.get("up") is False:
            raise CtapError(ERR.INVALID_OPTION)
        if make and options.get("rk") and not self.resident_keys:
            raise CtapError(ERR.UNSUPPORTED_OPTION)

    # --- authenticatorMakeCredential (§6.1) ------------------------------------------

    def _make_credential(
        self,
        p: Mapping[int, Any],
        event: threading.Event | None,
        on_keepalive: Callable[[STATUS], None] | None,
    ) -> dict[int, Any]:
        cdh, rp, user, params = _require(p, 1, 2, 3, 4)
        if p.get(8) == b"":
            self._answer_probe(event, on_keepalive)
        if not any(x.get("type") == "public-key" and x.get("alg") == ES256 for x in params):
            raise CtapError(ERR.UNSUPPORTED_ALGORITHM)
        options = p.get(7) or {}
        self._check_options(options, make=True)
        uv = self._check_pin_uv_param(p, (8, 9), cdh, Permission.MAKE_CREDENTIAL, rp["id"])
        resident = bool(options.get("rk"))
        if self._pin.pin_hash is not None and not uv and resident:
            raise CtapError(ERR.PUAT_REQUIRED)
        excluded = self._find(rp["id"], p.get(5) or [])
        self._collect_presence(event, on_keepalive)
        if excluded:
            raise CtapError(ERR.CREDENTIAL_EXCLUDED)
        cred = self._new_credential(rp["id"], user, resident)
        flags = Flag.UP | Flag.AT | (Flag.UV if uv else Flag(0))
        auth_data = self._auth_data(cred, flags) + self._attested_data(cred)
        fmt, statement = self._attest(cred, auth_data, cdh)
        return {1: fmt, 2: auth_data, 3: statement}

    def _new_credential(
        self, rp_id: str, user: Mapping[str, Any], resident: bool
    ) -> SoftCredential:
        if resident:  # a new resident credential replaces the old one for the same account
            self.credentials = [
                c
                for c in self.credentials
                if not (c.resident and c.rp_id == rp_id and c.user["id"] == user["id"])
            ]
        cred = SoftCredential(
            credential_id=secrets.token_bytes(32),
            rp_id=rp_id,
            user=dict(user),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            resident=resident,
        )
        self.credentials.append(cred)
        return cred

    def _attested_data(self, cred: SoftCredential) -> bytes:
        cose = cbor.encode(_cose_es256(cred.private_key.public_key()))
        cid = cred.credential_id
        return self.aaguid + struct.pack(">H", len(cid)) + cid + cose

    def _attest(
        self, cred: SoftCredential, auth_data: bytes, cdh: bytes
    ) -> tuple[str, dict[str, Any]]:
        if self.attestation == "none":
            return "none", {}
        signature = cred.private_key.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
        return "packed", {"alg": ES256, "sig": signature}  # self attestation (no x5c)

    def _auth_data(self, cred: SoftCredential, flags: Flag) -> bytes:
        if self.counter:
            cred.sign_count += 1
        rp_id_hash = hashlib.sha256(cred.rp_id.encode()).digest()
        return rp_id_hash + struct.pack(">BI", flags, cred.sign_count)

    # --- authenticatorGetAssertion (§6.2) --------------------------------------------

    def _get_assertion(
        self,
        p: Mapping[int, Any],
        event: threading.Event | None,
        on_keepalive: Callable[[STATUS], None] | None,
    ) -> dict[int, Any]:
        rp_id, cdh = _require(p, 1, 2)
        if p.get(6) == b"":
            self._answer_probe(event, on_keepalive)
        options = p.get(5) or {}
        self._check_options(options, make=False)
        uv = self._check_pin_uv_param(p, (6, 7), cdh, Permission.GET_ASSERTION, rp_id)
        allow_list = p.get(3)
        if allow_list:
            found = self._find(rp_id, allow_list)
        else:
            found = [c for c in reversed(self.credentials) if c.resident and c.rp_id == rp_id]
        up = options.get("up", True)
        if up:
            self._collect_presence(event, on_keepalive)
        if not found:
            raise CtapError(ERR.NO_CREDENTIALS)
        flags = (Flag.UP if up else Flag(0)) | (Flag.UV if uv else Flag(0))
        first, rest = (found[0], [] if allow_list else found[1:])
        self._pending = [(c, cdh, flags) for c in rest]
        response = self._assertion(first, cdh, flags)
        if rest:
            response[5] = len(found)
        return response

    def _next_assertion(self) -> dict[int, Any]:
        if not self._pending:
            raise CtapError(ERR.NOT_ALLOWED)
        cred, cdh, flags = self._pending.pop(0)
        return self._assertion(cred, cdh, flags)

    def _assertion(self, cred: SoftCredential, cdh: bytes, flags: Flag) -> dict[int, Any]:
        auth_data = self._auth_data(cred, flags)
        signature = cred.private_key.sign(auth_data + cdh, ec.ECDSA(hashes.SHA256()))
        response: dict[int, Any] = {
            1: {"type": "public-key", "id": cred.credential_id},
            2: auth_data,
            3: signature,
        }
        if cred.resident:  # identifying fields only after user verification (§6.2.2)
            keys = ("id", "name", "displayName") if flags & Flag.UV else ("id",)
            response[4] = {k: cred.user[k] for k in keys if k in cred.user}
        return response

    def _find(self, rp_id: str, descriptors: list[Mapping[str, Any]]) -> list[SoftCredential]:
        wanted = [d.get("id") for d in descriptors if d.get("type") == "public-key"]
        return [c for c in self.credentials if c.rp_id == rp_id and c.credential_id in wanted]

    # --- authenticatorClientPIN (§6.5.5) ---------------------------------------------

    def _protocol(self, version: int) -> PinProtocol:
        if version not in self.pin_protocols:
            raise CtapError(ERR.INVALID_PARAMETER)
        return PinProtocol(version)

    def _client_pin(self, p: Mapping[int, Any]) -> dict[int, Any]:
        if not self.client_pin_supported:
            raise CtapError(ERR.INVALID_COMMAND)
        version, sub = _require(p, 1, 2)
        protocol = self._protocol(version)
        if sub == PinSub.GET_PIN_RETRIES:
            return {3: self._pin.retries}
        if sub == PinSub.GET_KEY_AGREEMENT:
            return {1: _cose_es256(self._key_agreement.public_key(), alg=-25)}
        if sub == PinSub.SET_PIN:
            return self._set_pin(protocol, p)
        if sub == PinSub.GET_PIN_TOKEN:
            return self._pin_token(
                protocol, p, Permission.MAKE_CREDENTIAL | Permission.GET_ASSERTION
            )
        if sub == PinSub.GET_TOKEN_USING_PIN_WITH_PERMISSIONS:
            return self._pin_token_with_permissions(protocol, p)
        raise CtapError(ERR.INVALID_SUBCOMMAND)

    def _shared_secret(self, protocol: PinProtocol, platform_key: Mapping[int, Any]) -> bytes:
        try:
            x, y = (int.from_bytes(platform_key[k], "big") for k in (-2, -3))
            peer = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except (KeyError, TypeError, ValueError) as e:
            raise CtapError(ERR.INVALID_PARAMETER) from e
        return protocol.kdf(self._key_agreement.exchange(ec.ECDH(), peer))

    def _set_pin(self, protocol: PinProtocol, p: Mapping[int, Any]) -> dict[int, Any]:
        key_agreement, pin_uv_param, new_pin_enc = _require(p, 3, 4, 5)
        if self._pin.pin_hash is not None:
            raise CtapError(ERR.NOT_ALLOWED)
        shared = self._shared_secret(protocol, key_agreement)
        protocol.verify(shared, new_pin_enc, pin_uv_param)
        padded = protocol.decrypt(shared, new_pin_enc)
        pin = padded.rstrip(b"\0")
        if len(padded) < 64 or len(pin.decode(errors="replace")) < 4:
            raise CtapError(ERR.PIN_POLICY_VIOLATION)
        self._pin.pin_hash = hashlib.sha256(pin).digest()[:16]
        self._pin.retries = MAX_PIN_RETRIES
        return {}

    def _pin_token_with_permissions(
        self, protocol: PinProtocol, p: Mapping[int, Any]
    ) -> dict[int, Any]:
        permissions = Permission(p.get(9) or 0)
        if not permissions:
            raise CtapError(ERR.MISSING_PARAMETER)
        if permissions & ~(Permission.MAKE_CREDENTIAL | Permission.GET_ASSERTION):
            raise CtapError(ERR.UNAUTHORIZED_PERMISSION)
        if p.get(10) is None:
            raise CtapError(ERR.MISSING_PARAMETER)  # mc/ga permissions need an RP ID
        return self._pin_token(protocol, p, permissions, p[10])

    def _pin_token(
        self,
        protocol: PinProtocol,
        p: Mapping[int, Any],
        permissions: Permission,
        rp_id: str | None = None,
    ) -> dict[int, Any]:
        key_agreement, pin_hash_enc = _require(p, 3, 6)
        if self._pin.pin_hash is None:
            raise CtapError(ERR.PIN_NOT_SET)
        if self._pin.retries == 0:
            raise CtapError(ERR.PIN_BLOCKED)
        if self._pin.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES:
            raise CtapError(ERR.PIN_AUTH_BLOCKED)
        shared = self._shared_secret(protocol, key_agreement)
        self._pin.retries -= 1
        if not hmac.compare_digest(protocol.decrypt(shared, pin_hash_enc), self._pin.pin_hash):
            self._wrong_pin()
        self._pin.retries = MAX_PIN_RETRIES
        self._pin.consecutive_failures = 0
        self._pin.token = secrets.token_bytes(32)
        self._pin.permissions = permissions
        self._pin.rp_id = rp_id
        return {2: protocol.encrypt(shared, self._pin.token)}

    def _wrong_pin(self) -> None:
        self._key_agreement = ec.generate_private_key(ec.SECP256R1())
        self._pin.consecutive_failures += 1
        if self._pin.retries == 0:
            raise CtapError(ERR.PIN_BLOCKED)
        if self._pin.consecutive_failures >= MAX_CONSECUTIVE_PIN_FAILURES:
            raise CtapError(ERR.PIN_AUTH_BLOCKED)
        raise CtapError(ERR.PIN_INVALID)


def _pin_hash(pin: str) -> bytes:
    return hashlib.sha256(pin.encode()).digest()[:16]
