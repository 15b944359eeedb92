"""The session channel (DESIGN §3.5 revised): ``dir``/A256GCM envelopes under a channel key.

Once a card session (or a PIV reader link) is open, both sides hold a random 256-bit channel
key CK. Every later request of that session is a compact JWE ``alg=dir, enc=A256GCM,
kid=<session or link id>, typ=cardvault-channel`` under CK, and so is every answer: one
AES-GCM per message instead of an RSA decryption or an ECDH.

The request payload carries ``jti`` (single use: the service remembers it until ``exp``),
``iat`` and a short ``exp``, like an opening envelope. The answer carries ``re`` = the
request's ``jti``, so an answer cannot be played back as the answer to another request.
GCM's random 96-bit IVs stay far inside their bound (2^32 messages per key) because a key
lives no longer than its session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from cardvault import strict_json
from cardvault.crypto.envelope import (
    CONTENT_ENCRYPTION,
    EnvelopeAlgorithm,
    EnvelopeBroken,
    EnvelopeMalformed,
    EnvelopeUnknownKid,
    check_exp,
    check_jti,
    check_size,
    claims_json,
    compact_header,
    stamped_claims,
)
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject, JsonValue

__all__ = [
    "CHANNEL_ALG",
    "CHANNEL_KEY_SIZE",
    "CHANNEL_TYP",
    "ChannelRequest",
    "is_channel",
    "new_channel_key",
    "open_channel_request",
    "open_channel_response",
    "seal_channel_request",
    "seal_channel_response",
]

CHANNEL_ALG = "dir"
CHANNEL_TYP = "cardvault-channel"
CHANNEL_KEY_SIZE = 32
_RESERVED = frozenset({"jti", "iat", "exp", "re"})
_HEADERS = frozenset({"alg", "enc", "kid", "typ"})
_ALGORITHMS = [CHANNEL_ALG, CONTENT_ENCRYPTION]


@dataclass(frozen=True, kw_only=True)
class ChannelRequest:
    """A decrypted, checked channel request; the caller must still refuse a replayed ``jti``."""

    claims: JsonObject = field(repr=False)
    jti: str
    exp: int
    kid: str


def new_channel_key() -> bytearray:
    return bytearray(secrets.token_bytes(CHANNEL_KEY_SIZE))


def is_channel(token: str) -> str | None:
    """The ``kid`` of a channel envelope, or None for anything else (an opening envelope).
    Raises EnvelopeMalformed when the header cannot be read at all."""
    header = compact_header(token)
    if header.get("alg") != CHANNEL_ALG:
        return None
    kid = header.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
        raise EnvelopeUnknownKid(
            "a channel envelope names its session or link in kid",
            remedy="sign in again and use the channel key you were given",
        )
    return kid


def seal_channel_request(
    key: bytes | bytearray,
    kid: str,
    claims: Mapping[str, JsonValue],
    *,
    now: float,
    ttl_seconds: int = 60,
) -> tuple[str, str]:
    """Client side: ``(token, jti)``; keep ``jti`` to check the answer with."""
    payload = stamped_claims(claims, _RESERVED, now=now, ttl_seconds=ttl_seconds)
    return _seal(key, kid, payload), str(payload["jti"])


def open_channel_request(
    key_for: Callable[[str], bytes | bytearray],
    token: str,
    *,
    now: float,
    max_bytes: int = 65536,
    max_depth: int = strict_json.DEFAULT_MAX_DEPTH,
    leeway_seconds: float = 0,
) -> ChannelRequest:
    """Server side: ``key_for(kid)`` gives the session's or link's CK (or raises)."""
    token = check_size(token, max_bytes)
    kid = _vet(compact_header(token))
    payload = _decrypt(key_for(kid), token, max_bytes, max_depth)
    exp = check_exp(payload, now, leeway_seconds)
    jti = check_jti(payload)
    claims = {k: v for k, v in payload.items() if k not in _RESERVED}
    return ChannelRequest(claims=claims, jti=jti, exp=exp, kid=kid)


def seal_channel_response(
    key: bytes | bytearray, kid: str, request_jti: str, claims: Mapping[str, JsonValue]
) -> str:
    """Server side: the answer under the same CK, bound to its request by ``re``."""
    return _seal(key, kid, {**claims, "re": request_jti})


def open_channel_response(
    key: bytes | bytearray,
    kid: str,
    request_jti: str,
    token: str,
    *,
    max_bytes: int = 1 << 20,
    max_depth: int = strict_json.DEFAULT_MAX_DEPTH,
) -> JsonObject:
    """Client side: decrypt the answer and check it answers this request."""
    token = check_size(token, max_bytes)
    if _vet(compact_header(token)) != kid:
        raise EnvelopeUnknownKid("the answer is sealed for another session")
    payload = _decrypt(key, token, max_bytes, max_depth)
    answers = payload.pop("re", None)
    if not isinstance(answers, str) or not secrets.compare_digest(answers, request_jti):
        raise EnvelopeBroken("the answer does not belong to this request")
    return payload


# --- helpers --------------------------------------------------------------------------------


def _seal(key: bytes | bytearray, kid: str, payload: JsonObject) -> str:
    header = {"alg": CHANNEL_ALG, "enc": CONTENT_ENCRYPTION, "kid": kid, "typ": CHANNEL_TYP}
    return jwe.encrypt_compact(header, claims_json(payload), _oct(key), algorithms=_ALGORITHMS)


def _oct(key: bytes | bytearray) -> OctKey:
    if len(key) != CHANNEL_KEY_SIZE:
        raise InvalidInput(f"a channel key is {CHANNEL_KEY_SIZE} bytes")
    return OctKey.import_key(bytes(key))


def _vet(header: JsonObject) -> str:
    """Allow-list the header before any key is looked up; returns its ``kid``."""
    if "zip" in header:
        raise EnvelopeAlgorithm("compressed envelopes (zip) are refused")
    if header.get("alg") != CHANNEL_ALG or header.get("enc") != CONTENT_ENCRYPTION:
        raise EnvelopeAlgorithm(
            f"a channel envelope is alg={CHANNEL_ALG} with enc={CONTENT_ENCRYPTION}"
        )
    unexpected = set(header) - _HEADERS
    if unexpected:
        raise EnvelopeMalformed(f"unexpected header parameters {sorted(unexpected)}")
    if header.get("typ") != CHANNEL_TYP:
        raise EnvelopeMalformed(f"a channel envelope has typ={CHANNEL_TYP}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise EnvelopeUnknownKid("a channel envelope names its session or link in kid")
    return kid


def _decrypt(key: bytes | bytearray, token: str, max_bytes: int, max_depth: int) -> JsonObject:
    registry = jwe.JWERegistry(algorithms=_ALGORITHMS)
    registry.max_ciphertext_length = max_bytes
    try:
        plaintext = jwe.decrypt_compact(token, _oct(key), registry=registry).plaintext
    except (JoseError, ValueError) as err:
        raise EnvelopeBroken("the envelope does not decrypt under this channel's key") from err
    try:
        payload = strict_json.loads(
            plaintext or b"", max_depth=max_depth, max_bytes=max_bytes, what="The envelope"
        )
    except strict_json.JsonMalformed as err:
        raise EnvelopeMalformed("the envelope's payload is not JSON") from err
    if not isinstance(payload, dict):
        raise EnvelopeMalformed("the envelope's payload is not a JSON object")
    return payload
