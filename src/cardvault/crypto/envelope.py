"""The JWE envelope around sensitive API payloads (DESIGN §3.5), built on ``joserfc``.

Opening requests are compact JWEs with ``enc=A256GCM`` to one of the service's transport keys
(``kid`` = RFC 7638 thumbprint, published as a JWKS): ``alg=ECDH-ES+A256KW`` to its P-256 key
(what cardvault's own clients use; one ECDH) or ``alg=RSA-OAEP-256`` to its RSA-3072 key (for
third-party clients). The payload is a JSON object: the caller's claims plus ``jti`` (random),
``iat``, ``exp`` (short) and ``rk``. In-session requests use the session channel instead
(crypto/channel.py).

Responses: DESIGN §3.5 asks that the service answer "under the same content key". joserfc
does not expose a request's content-encryption key (CEK) on either side, and reaching into its
internals for it would tie us to them. So the client puts a fresh random 256-bit **response
key** in the encrypted request payload (claim ``rk``), and the service answers with a compact
JWE ``alg=dir, enc=A256GCM`` under it. The confidentiality is the same (only the client and the
holder of the transport key ever know ``rk``, as with the CEK), and the response is bound to
its request because ``rk`` is fresh per request.

The server refuses, with a precise error, anything but the expected algorithms (no ``RSA1_5``,
``dir`` or ``none`` requests, no ``zip``, no ``crit``), unknown key ids, tampering, a missing
or past ``exp``, an ``exp`` more than five minutes ahead, a missing ``jti`` and oversized
tokens. Checking ``jti`` for replay is the caller's job (it needs a store): it is returned.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, RSAKey

from cardvault import strict_json
from cardvault.errors import AuthenticationFailed, InvalidInput, error
from cardvault.json_types import JsonObject, JsonValue

__all__ = [
    "CONTENT_ENCRYPTION",
    "ECDH_KEY_MANAGEMENT",
    "KEY_MANAGEMENT",
    "MAX_LIFETIME_SECONDS",
    "RESPONSE_KEY_MANAGEMENT",
    "EnvelopeAlgorithm",
    "EnvelopeBroken",
    "EnvelopeExpired",
    "EnvelopeLifetime",
    "EnvelopeMalformed",
    "EnvelopeTooLarge",
    "EnvelopeUnknownKid",
    "OpenedRequest",
    "SealedRequest",
    "TransportKey",
    "jwks",
    "open_request",
    "open_response",
    "seal_request",
    "seal_response",
]

KEY_MANAGEMENT = "RSA-OAEP-256"
ECDH_KEY_MANAGEMENT = "ECDH-ES+A256KW"
ECDH_CURVE = "P-256"
OPENING_ALGORITHMS = frozenset({KEY_MANAGEMENT, ECDH_KEY_MANAGEMENT})
CONTENT_ENCRYPTION = "A256GCM"
RESPONSE_KEY_MANAGEMENT = "dir"
MAX_LIFETIME_SECONDS = 300
RESPONSE_KEY_SIZE = 32
TRANSPORT_KEY_BITS = 3072
RESERVED_CLAIMS = frozenset({"jti", "iat", "exp", "rk"})
_ALLOWED_HEADERS = frozenset({"alg", "enc", "kid", "typ", "cty"})
#: ECDH-ES carries the sender's ephemeral public key (and may name the parties)
_ECDH_HEADERS = frozenset({"epk", "apu", "apv"})


class EnvelopeMalformed(InvalidInput):
    code = "envelope_malformed"


@error
class EnvelopeTooLarge(InvalidInput):
    code = "envelope_too_large"
    limit: int


class EnvelopeAlgorithm(InvalidInput):
    code = "envelope_algorithm"


class EnvelopeUnknownKid(InvalidInput):
    code = "envelope_unknown_kid"


class EnvelopeLifetime(InvalidInput):
    """``exp`` lies too far ahead: envelopes are short-lived so that replay stores stay small."""

    code = "envelope_lifetime"


class EnvelopeBroken(AuthenticationFailed):
    """The envelope did not decrypt: it was changed, or was sealed to another key."""

    code = "envelope_broken"


class EnvelopeExpired(AuthenticationFailed):
    code = "envelope_expired"


# --- transport key --------------------------------------------------------------------------


@dataclass(frozen=True)
class TransportKey:
    """A service JWE decryption key: RSA-3072 (``RSA-OAEP-256``) or P-256
    (``ECDH-ES+A256KW``); ``kid`` is its RFC 7638 thumbprint."""

    _jwk: RSAKey | ECKey = field(repr=False)

    def __post_init__(self) -> None:
        if isinstance(self._jwk, ECKey):
            if self._jwk.private_key is None or self._jwk.curve_name != ECDH_CURVE:
                raise InvalidInput(f"an ECDH transport key is a private {ECDH_CURVE} key")
            return
        raw = self._jwk.private_key
        if raw is None or raw.key_size < TRANSPORT_KEY_BITS:
            raise InvalidInput(
                f"a transport key is a private RSA key of ≥{TRANSPORT_KEY_BITS} bits"
            )

    def __repr__(self) -> str:
        return f"TransportKey(kid={self.kid!r})"

    @property
    def kid(self) -> str:
        return self._jwk.thumbprint()

    @property
    def alg(self) -> str:
        return ECDH_KEY_MANAGEMENT if isinstance(self._jwk, ECKey) else KEY_MANAGEMENT

    @classmethod
    def generate(cls) -> TransportKey:
        return cls(RSAKey.generate_key(TRANSPORT_KEY_BITS, private=True))

    @classmethod
    def generate_ecdh(cls) -> TransportKey:
        return cls(ECKey.generate_key(ECDH_CURVE, private=True))

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM; the key store seals it under the master key."""
        return self._jwk.as_pem(private=True)

    @classmethod
    def from_pem(cls, pem: bytes | bytearray) -> TransportKey:
        kind: type[RSAKey] | type[ECKey] = ECKey if b"EC PRIVATE" in pem else RSAKey
        try:
            if kind is RSAKey:
                try:
                    return cls(RSAKey.import_key(bytes(pem)))
                except (JoseError, ValueError, TypeError):
                    kind = ECKey  # PKCS#8 hides the type: try the other one
            return cls(ECKey.import_key(bytes(pem)))
        except (JoseError, ValueError, TypeError) as err:
            raise InvalidInput("the transport key PEM could not be parsed") from err

    def public_jwk(self) -> JsonObject:
        """The public half as a JWK, with ``kid``, ``use=enc`` and its ``alg``."""
        jwk = jwk_json(self._jwk.as_dict(private=False))
        jwk.update(kid=self.kid, use="enc", alg=self.alg)
        return jwk

    def decrypt(self, token: str, max_bytes: int) -> bytes:
        """Decrypt an already vetted compact JWE; failures are EnvelopeBroken."""
        registry = jwe.JWERegistry(algorithms=[self.alg, CONTENT_ENCRYPTION])
        registry.max_ciphertext_length = max_bytes
        try:
            plaintext = jwe.decrypt_compact(token, self._jwk, registry=registry).plaintext
        except (JoseError, ValueError) as err:
            raise EnvelopeBroken("the envelope does not decrypt") from err
        if plaintext is None:
            raise EnvelopeBroken("the envelope does not decrypt")
        return plaintext


def jwks(keys: Iterable[TransportKey]) -> JsonObject:
    """The document served at ``/.well-known/jwks.json``."""
    return {"keys": [key.public_jwk() for key in keys]}


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SealedRequest:
    """What the client sends (``token``) and keeps to open the answer (``response_key``)."""

    token: str
    response_key: bytearray = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class OpenedRequest:
    """A decrypted, checked request. The caller must still refuse a replayed ``jti``."""

    claims: dict[str, Any] = field(repr=False)  # passcodes, answers, device secrets…
    jti: str
    exp: int
    kid: str
    response_key: bytearray = field(repr=False)


def seal_request(
    public_jwk: Mapping[str, JsonValue],
    claims: Mapping[str, JsonValue],
    *,
    ttl_seconds: int = 60,
    now: float,
) -> SealedRequest:
    """Client side: encrypt ``claims`` to the service's transport key."""
    stamped = stamped_claims(claims, RESERVED_CLAIMS, now=now, ttl_seconds=ttl_seconds)
    key, kid, alg = _import_public_jwk(public_jwk)
    response_key = bytearray(secrets.token_bytes(RESPONSE_KEY_SIZE))
    payload = {**stamped, "rk": _b64url(bytes(response_key))}
    header = {"alg": alg, "enc": CONTENT_ENCRYPTION, "kid": kid}
    token = jwe.encrypt_compact(
        header, claims_json(payload), key, algorithms=list(header.values())[:2]
    )
    return SealedRequest(token=token, response_key=response_key)


def stamped_claims(
    claims: Mapping[str, JsonValue], reserved: frozenset[str], *, now: float, ttl_seconds: int
) -> JsonObject:
    """A request's claims with a fresh ``jti``, ``iat`` and ``exp``; refuses a lifetime out
    of bounds and claims that take an envelope's ``reserved`` names."""
    if not 0 < ttl_seconds <= MAX_LIFETIME_SECONDS:
        raise InvalidInput(f"an envelope lives 1 to {MAX_LIFETIME_SECONDS} seconds")
    if reserved & set(claims):
        raise InvalidInput(f"claims may not use the names {sorted(reserved)}")
    jti = secrets.token_urlsafe(16)
    return {**claims, "jti": jti, "iat": int(now), "exp": int(now) + ttl_seconds}


def _import_public_jwk(public_jwk: Mapping[str, JsonValue]) -> tuple[RSAKey | ECKey, str, str]:
    """The key, its kid and the algorithm to seal with; only what the allow-list admits."""
    if public_jwk.get("use", "enc") != "enc":
        raise EnvelopeAlgorithm("the transport key is not an encryption key")
    key: RSAKey | ECKey
    try:
        kind = (public_jwk.get("kty"), public_jwk.get("alg", KEY_MANAGEMENT))
        if kind == ("EC", ECDH_KEY_MANAGEMENT):
            if public_jwk.get("crv") != ECDH_CURVE:
                raise EnvelopeAlgorithm(f"an ECDH transport key is on {ECDH_CURVE}")
            key, alg = ECKey.import_key(_only(public_jwk, "kty", "crv", "x", "y")), kind[1]
        elif kind == ("RSA", KEY_MANAGEMENT):
            key, alg = RSAKey.import_key(_only(public_jwk, "kty", "n", "e")), KEY_MANAGEMENT
            if key.public_key.key_size < TRANSPORT_KEY_BITS:
                raise EnvelopeAlgorithm(
                    f"the transport key must have at least {TRANSPORT_KEY_BITS} bits"
                )
        else:
            raise EnvelopeAlgorithm(
                f"the transport key must be a P-256 key for {ECDH_KEY_MANAGEMENT} "
                f"or an RSA key for {KEY_MANAGEMENT}"
            )
    except (JoseError, ValueError, TypeError) as err:
        raise EnvelopeMalformed("the transport key JWK could not be parsed") from err
    kid = public_jwk.get("kid", key.thumbprint())
    if not isinstance(kid, str):
        raise EnvelopeMalformed("the transport key's kid must be text")
    return key, kid, alg


def _only(jwk: Mapping[str, JsonValue], *names: str) -> dict[str, str | list[str]]:
    members = {k: v for k, v in jwk.items() if k in names}
    return cast("dict[str, str | list[str]]", members)  # checked by joserfc


def open_request(
    keys: Mapping[str, TransportKey],
    token: str,
    *,
    now: float,
    max_bytes: int = 65536,
    max_depth: int = strict_json.DEFAULT_MAX_DEPTH,
    leeway_seconds: float = 0,
) -> OpenedRequest:
    """Server side: vet the header, decrypt with the key named by ``kid``, check the claims.

    ``leeway_seconds`` tolerates that much clock skew between client and service; a payload
    nested deeper than ``max_depth`` is refused with :class:`~cardvault.strict_json.JsonTooDeep`.
    """
    token = check_size(token, max_bytes)
    header = compact_header(token)
    alg = header.get("alg")
    _vet_header(header, alg if alg in OPENING_ALGORITHMS else KEY_MANAGEMENT)
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise EnvelopeUnknownKid(
            "the envelope is sealed to a key this service does not have",
            remedy="fetch /.well-known/jwks.json again and re-seal the request",
        )
    if keys[kid].alg != alg:
        raise EnvelopeAlgorithm(f"key {kid} is for alg={keys[kid].alg}")
    payload = _parse_payload(keys[kid].decrypt(token, max_bytes), max_depth)
    exp = check_exp(payload, now, leeway_seconds)
    jti = check_jti(payload)
    response_key = _response_key(payload.get("rk"))
    claims = {k: v for k, v in payload.items() if k not in RESERVED_CLAIMS}
    return OpenedRequest(claims=claims, jti=jti, exp=exp, kid=kid, response_key=response_key)


def check_size(token: str, max_bytes: int) -> str:
    if isinstance(token, bytes):
        token = token.decode("ascii", errors="replace")
    if not isinstance(token, str):
        raise EnvelopeMalformed("the envelope must be a compact JWE string")
    if len(token) > max_bytes:
        raise EnvelopeTooLarge(f"the envelope is larger than {max_bytes} bytes", limit=max_bytes)
    return token


def check_exp(payload: JsonObject, now: float, leeway: float) -> int:
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        raise EnvelopeMalformed("the envelope has no valid exp")
    if exp <= now - leeway:
        raise EnvelopeExpired("the envelope has expired")
    if exp > now + MAX_LIFETIME_SECONDS + leeway:
        raise EnvelopeLifetime(
            f"the envelope's exp is more than {MAX_LIFETIME_SECONDS} seconds ahead"
        )
    return int(exp)


def check_jti(payload: JsonObject) -> str:
    """The request's ``jti`` (the caller refuses a replay of it); EnvelopeMalformed if absent."""
    jti = payload.get("jti")
    if not isinstance(jti, str) or not 16 <= len(jti) <= 128:
        raise EnvelopeMalformed("the envelope has no valid jti")
    return jti


def _response_key(value: Any) -> bytearray:
    raw = _unb64url(value) if isinstance(value, str) else b""
    if len(raw) != RESPONSE_KEY_SIZE:
        raise EnvelopeMalformed("the envelope has no valid response key (rk)")
    return bytearray(raw)


# --- responses ------------------------------------------------------------------------------


def _oct_key(response_key: bytes | bytearray) -> OctKey:
    if len(response_key) != RESPONSE_KEY_SIZE:
        raise InvalidInput(f"a response key is {RESPONSE_KEY_SIZE} bytes")
    return OctKey.import_key(bytes(response_key))


def seal_response(response_key: bytes | bytearray, claims: Mapping[str, JsonValue]) -> str:
    """Server side: encrypt the answer under the request's response key (alg=dir, A256GCM)."""
    header = {"alg": RESPONSE_KEY_MANAGEMENT, "enc": CONTENT_ENCRYPTION}
    algorithms = [RESPONSE_KEY_MANAGEMENT, CONTENT_ENCRYPTION]
    return jwe.encrypt_compact(
        header, claims_json(dict(claims)), _oct_key(response_key), algorithms=algorithms
    )


def open_response(
    response_key: bytes | bytearray,
    token: str,
    *,
    max_bytes: int = 1 << 20,
    max_depth: int = strict_json.DEFAULT_MAX_DEPTH,
) -> JsonObject:
    """Client side: decrypt the service's answer; refuses anything but dir/A256GCM."""
    token = check_size(token, max_bytes)
    _vet_header(compact_header(token), RESPONSE_KEY_MANAGEMENT)
    registry = jwe.JWERegistry(algorithms=[RESPONSE_KEY_MANAGEMENT, CONTENT_ENCRYPTION])
    registry.max_ciphertext_length = max_bytes
    try:
        plaintext = jwe.decrypt_compact(token, _oct_key(response_key), registry=registry).plaintext
    except (JoseError, ValueError) as err:
        raise EnvelopeBroken("the response does not decrypt") from err
    return _parse_payload(plaintext or b"", max_depth)


# --- shared parsing -------------------------------------------------------------------------


def compact_header(token: str) -> JsonObject:
    parts = token.split(".")
    if len(parts) != 5:
        raise EnvelopeMalformed("the envelope is not a compact JWE (five parts)")
    try:
        raw = _unb64url(parts[0])
    except ValueError as err:
        raise EnvelopeMalformed("the envelope's header is not base64url") from err
    # a JOSE header is one flat object: two levels leave room for nothing else
    header = _strict_json(raw, 2, "The envelope's header")
    if not isinstance(header, dict):
        raise EnvelopeMalformed("the envelope's header is not a JSON object")
    return header


def _vet_header(header: JsonObject, alg: str) -> JsonObject:
    """Allow-list the header before any key is touched."""
    if "zip" in header:
        raise EnvelopeAlgorithm("compressed envelopes (zip) are refused")
    if header.get("alg") != alg or header.get("enc") != CONTENT_ENCRYPTION:
        raise EnvelopeAlgorithm(f"only alg={alg} with enc={CONTENT_ENCRYPTION} is accepted")
    allowed = _ALLOWED_HEADERS | (_ECDH_HEADERS if alg == ECDH_KEY_MANAGEMENT else frozenset())
    unexpected = set(header) - allowed
    if unexpected:
        raise EnvelopeMalformed(f"unexpected header parameters {sorted(unexpected)}")
    return header


def _parse_payload(plaintext: bytes, max_depth: int) -> JsonObject:
    payload = _strict_json(plaintext, max_depth, "The envelope's payload")
    if not isinstance(payload, dict):
        raise EnvelopeMalformed("the envelope's payload is not a JSON object")
    return payload


def _strict_json(data: bytes, max_depth: int, what: str) -> Any:
    """Strict JSON within the depth limit: over a limit is a 400, anything else malformed."""
    try:
        return strict_json.loads(data, max_depth=max_depth, max_bytes=len(data), what=what)
    except strict_json.JsonMalformed as err:
        raise EnvelopeMalformed(f"{err.message[0].lower()}{err.message[1:]}") from None


def claims_json(obj: Mapping[str, JsonValue]) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise InvalidInput("the claims are not JSON-serialisable") from err


def jwk_json(jwk: Mapping[str, str | list[str]]) -> JsonObject:
    """A JWK as joserfc exports it, typed as the JSON it is."""
    return {name: [*value] if isinstance(value, list) else value for name, value in jwk.items()}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64url(text: str) -> bytes:
    if not text.isascii() or "=" in text or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as err:
        raise ValueError("not base64url") from err
