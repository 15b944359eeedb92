"""Security headers on every response: a strict Content-Security-Policy and friends.

The pages have no inline script or style and load nothing from elsewhere, so the policy can
say exactly that. Images may be ``data:`` URIs (QR codes are rendered server-side as SVG).
The API's interactive docs page too: Swagger UI is vendored (``web/api_docs.py``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"permissions-policy",
        b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
        b"publickey-credentials-get=(self), publickey-credentials-create=(self)",
    ),
    (b"strict-transport-security", b"max-age=31536000"),
)


class ResponseHeaders:
    """ASGI middleware that edits the headers of each HTTP response as it starts; a subclass
    says how (other scopes, such as the lifespan, pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def edited(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.edit(scope, list(message.get("headers") or []))
            await send(message)

        await self.app(scope, receive, edited)

    def edit(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The response's headers as they should leave."""
        raise NotImplementedError


class SecurityHeaders(ResponseHeaders):
    """ASGI middleware: add the headers unless the app set them already."""

    EXTRA = (*HEADERS, (b"content-security-policy", CSP.encode()))

    def edit(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in headers}
        return headers + [(n, v) for n, v in self.EXTRA if n not in present]
