"""The clients' side of the cardvault API: HTTPS, with JWE envelopes where secrets travel.

Takes an ``httpx.Client`` so that tests can run it against the in-process app and the
command line against a real server (TLS verified with ``--ca-file``). Every refusal comes
back as :class:`ServiceError` carrying the problem's ``status`` and ``problem`` code
(RFC 9457), so callers decide on those, never on message text.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx

from cardvault.clients.common.replies import JsonObject, JsonValue, Reply
from cardvault.crypto import channel, envelope
from cardvault.errors import CardvaultError, error

__all__ = ["JOSE", "CardvaultApi", "ServiceError", "preferred_transport_key", "problem_of"]

JOSE = "application/jose"
#: headers computed over the exact body bytes sent (a device's request signature)
Headers = Callable[[bytes], dict[str, str]]


@error
class ServiceError(CardvaultError):
    """What the service refused, with its message; or a transport problem (no ``status``).

    ``problem`` is the refusal's problem code, ``status`` its HTTP status; ``retry_after``,
    ``push_status`` and ``revoked`` are what the service (or this client) adds."""

    code = "agent_error"
    problem: str | None = None
    status: int | None = None
    retry_after: int | None = None
    push_status: str | None = None
    revoked: bool | None = None


class CardvaultApi:
    """JSON and sealed calls to one service; ``kid`` pins the transport key a QR code named."""

    def __init__(self, client: httpx.Client, *, kid: str | None = None) -> None:
        self.client = client
        self.kid = kid
        self._jwk: JsonObject | None = None
        #: the card session's (or reader link's) channel: kid and CK (DESIGN §3.5 revised)
        self._channel: tuple[str, bytearray] | None = None

    def transport_key(self) -> JsonObject:
        """The service's public transport key (fetched over verified TLS, then kept): the
        P-256 ECDH-ES key when published, else the RSA one; the QR code's ``kid`` if named."""
        if self._jwk is None:
            published = self._json(self._send("GET", "/.well-known/jwks.json"))
            keys = [k.data for k in published.objects("keys")]
            if self.kid and not any(k.get("kid") == self.kid for k in keys):
                raise ServiceError(
                    "The service's key does not match the QR code.",
                    remedy="Check the server address; ask your RA for a new QR code.",
                )
            self._jwk = preferred_transport_key(keys, self.kid)
        return self._jwk

    def use_channel(self, kid: str | None, key_b64: str | None) -> None:
        """Send in-session calls over this session's (or link's) channel from now on."""
        self.end_channel()
        if kid and key_b64:
            self._channel = (kid, bytearray(base64.b64decode(key_b64)))

    def end_channel(self) -> None:
        """Forget the channel key (overwritten in memory)."""
        if self._channel is not None:
            self._channel[1][:] = bytes(len(self._channel[1]))
            self._channel = None

    def session_call(self, path: str, claims: JsonObject) -> Reply:
        """POST claims of an open session: over its channel (one AES-GCM each way) when
        there is one, else in an opening envelope."""
        if self._channel is None:
            return self.sealed_call(path, claims)
        kid, key = self._channel
        token, jti = channel.seal_channel_request(key, kid, claims, now=time.time())
        response = self._send("POST", path, content=token, headers={"Content-Type": JOSE})
        return Reply(channel.open_channel_response(key, kid, jti, response.text))

    def sealed_call(self, path: str, claims: JsonObject, headers: Headers | None = None) -> Reply:
        """POST claims in a JWE envelope; open the encrypted answer. An envelope sealed to a
        transport key the service has since retired was refused before anything happened, so
        it is sealed once more to the key the service publishes now."""
        try:
            return self._sealed_once(path, claims, headers)
        except ServiceError as exc:
            if exc.problem != envelope.EnvelopeUnknownKid.code or self.kid is not None:
                raise
            self._jwk = None
            return self._sealed_once(path, claims, headers)

    def _sealed_once(self, path: str, claims: JsonObject, headers: Headers | None) -> Reply:
        request = envelope.seal_request(self.transport_key(), claims, now=time.time())
        body = request.token.encode("ascii")
        extra = headers(body) if headers is not None else {}
        try:
            response = self._send(
                "POST", path, content=body, headers={**extra, "Content-Type": JOSE}
            )
            return Reply(envelope.open_response(request.response_key, response.text))
        finally:
            request.response_key[:] = bytes(len(request.response_key))

    def get(
        self, path: str, *, token: str | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        return self._json(self._send("GET", path, headers=_auth(token), params=params))

    def post(self, path: str, body: JsonObject, *, token: str | None = None) -> Reply:
        return self._json(self._send("POST", path, json=body, headers=_auth(token)))

    def delete(self, path: str, *, token: str) -> None:
        self._send("DELETE", path, headers=_auth(token))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"Cannot reach cardvault: {exc}.",
                remedy="Check --server and --ca-file, and your network.",
            ) from exc
        if response.status_code >= 400:
            raise problem_of(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Reply:
        try:
            data: JsonValue = response.json()
        except ValueError:
            raise ServiceError(
                f"{response.url} answered something that is not JSON.",
                remedy="Check that --server is the cardvault service.",
            ) from None
        return Reply(data if isinstance(data, dict) else {"items": data})


def preferred_transport_key(keys: list[JsonObject], kid: str | None = None) -> JsonObject:
    """The JWKS key a cardvault client seals opening envelopes to: the one pinned by ``kid``,
    else the newest P-256 ``ECDH-ES+A256KW`` key, else the newest ``RSA-OAEP-256`` one (the
    JWKS lists them oldest first: after ``keys transport-add`` the new one is last)."""
    usable = [
        k
        for k in keys
        if (k.get("kty"), k.get("alg", envelope.KEY_MANAGEMENT))
        in (("EC", envelope.ECDH_KEY_MANAGEMENT), ("RSA", envelope.KEY_MANAGEMENT))
    ]
    if kid:
        usable = [k for k in usable if k.get("kid") == kid]
    usable.reverse()
    usable.sort(key=lambda k: k.get("kty") != "EC")
    if not usable:
        raise ServiceError("The service publishes no transport key this client can use.")
    return usable[0]


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def problem_of(response: httpx.Response) -> ServiceError:
    """The service's problem details (RFC 9457) as a ServiceError; ``response`` is read."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    wait = response.headers.get("retry-after", "")
    return ServiceError(
        body.get("detail") or body.get("title") or f"The service answered {response.status_code}.",
        remedy=body.get("remedy"),
        status=response.status_code,
        problem=body.get("code"),
        retry_after=int(wait) if wait.isdigit() else None,
    )
