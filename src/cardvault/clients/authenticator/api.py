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

import httpx

from cardvault.clients.common.api import CardvaultApi, ServiceError, problem_of
from cardvault.clients.common.replies import JsonObject, JsonValue, Reply
from cardvault.crypto import device as dcrypto

SSE_READ_TIMEOUT = 60.0


class DeviceApi(CardvaultApi):
    """The clients' API plus the device's signature on every request."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        device_id: str | None = None,
        key: dcrypto.DeviceKey | None = None,
        kid: str | None = None,
    ) -> None:
        super().__init__(client, kid=kid)
        self.device_id = device_id
        self.key = key

    def __enter__(self) -> DeviceApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if self.device_id is None or self.key is None:
            raise ServiceError("This app is not paired yet.")
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

    def signed(self, method: str, path: str, body: JsonObject | None = None) -> Reply:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = self.headers(method, path, raw)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(method, path, content=raw, headers=headers)
        return self._json(response) if response.content else Reply({})

    def signed_sealed(self, path: str, claims: JsonObject) -> Reply:
        """A JWE-sealed request that is also a signed device request."""
        return self.sealed_call(path, claims, lambda body: self.headers("POST", path, body))

    def events(self) -> Iterator[tuple[str, Reply]]:
        """The device's server-sent events as (event, data), until the server closes."""
        path = "/api/v1/device/events"
        timeout = httpx.Timeout(10.0, read=SSE_READ_TIMEOUT)
        try:
            with self.client.stream(
                "GET", path, headers=self.headers("GET", path, b""), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_of(response)
                yield from _parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"The connection to cardvault was lost: {exc}.",
                remedy="Check the network; the app reconnects when started again.",
            ) from exc


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, Reply]]:
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            parsed = _json_or_none("\n".join(data)) if data else None
            if parsed is not None:
                yield event, Reply(parsed)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def _json_or_none(text: str) -> JsonObject | None:
    try:
        value: JsonValue = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
