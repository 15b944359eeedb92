"""The app's side of the HTTP protocol: signed device requests, JWE envelopes, event stream.

Every request after pairing carries the four ``X-Cardvault-*`` headers: device id,
timestamp, a fresh nonce, and the device key's signature over method, path, timestamp,
nonce and the SHA-256 of the exact body bytes sent.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx

from cardvault.clients.agent.api import JOSE, AgentError, CardvaultApi, preferred_transport_key
from cardvault.crypto import device as dcrypto
from cardvault.crypto import envelope

SSE_READ_TIMEOUT = 60.0


class DeviceApi(CardvaultApi):
    """The agent's API client plus the device's signature on every request."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        device_id: str | None = None,
        key: dcrypto.DeviceKey | None = None,
        kid: str | None = None,
    ) -> None:
        super().__init__(client)
        self.device_id = device_id
        self.key = key
        self.kid = kid

    def __enter__(self) -> DeviceApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def transport_key(self) -> dict[str, Any]:
        """The service's JWE key; the one the QR code named, when it named one."""
        if self._jwk is None:
            data = self._json(self._send("GET", "/.well-known/jwks.json"))
            keys = data.get("keys", [])
            if self.kid and not any(k.get("kid") == self.kid for k in keys):
                raise AgentError(
                    "The service's key does not match the QR code.",
                    remedy="Check the server address; ask your RA for a new QR code.",
                )
            self._jwk = preferred_transport_key(keys, self.kid)
        return self._jwk

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if self.device_id is None or self.key is None:
            raise AgentError("This app is not paired yet.")
        timestamp = int(time.time())
        nonce = secrets.token_urlsafe(16)
        message = dcrypto.request_signing_input(
            method=method, path=path, timestamp=timestamp, nonce=nonce, body=body
        )
        return {
            "X-Cardvault-Device": self.device_id,
            "X-Cardvault-Timestamp": str(timestamp),
            "X-Cardvault-Nonce": nonce,
            "X-Cardvault-Signature": dcrypto.b64url(self.key.sign(message)),
        }

    def signed(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = self.headers(method, path, raw)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(method, path, content=raw, headers=headers)
        return self._json(response) if response.content else {}

    def signed_sealed(self, path: str, claims: dict[str, Any]) -> dict[str, Any]:
        """A JWE-sealed request that is also a signed device request."""
        request = envelope.seal_request(self.transport_key(), claims, now=time.time())
        raw = request.token.encode("ascii")
        headers = {**self.headers("POST", path, raw), "Content-Type": JOSE}
        try:
            response = self._send("POST", path, content=raw, headers=headers)
            return envelope.open_response(request.response_key, response.text)
        finally:
            request.response_key[:] = bytes(len(request.response_key))

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The device's server-sent events as (event, data), until the server closes."""
        path = "/api/v1/device/events"
        timeout = httpx.Timeout(10.0, read=SSE_READ_TIMEOUT)
        try:
            with self.client.stream(
                "GET", path, headers=self.headers("GET", path, b""), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _problem_of(response)
                yield from _parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise AgentError(
                f"The connection to cardvault was lost: {exc}.",
                remedy="Check the network; the app reconnects when started again.",
            ) from exc


def _problem_of(response: httpx.Response) -> AgentError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    return AgentError(
        body.get("title") or f"The service answered {response.status_code}.",
        remedy=body.get("remedy"),
        status=response.status_code,
        problem=body.get("code"),
    )


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            parsed = _json_or_none("\n".join(data)) if data else None
            if parsed is not None:
                yield event, parsed
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
