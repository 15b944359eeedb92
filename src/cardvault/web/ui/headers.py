"""Security headers on every response: a strict Content-Security-Policy and friends.

The pages have no inline script or style and load nothing from elsewhere, so the policy can
say exactly that. Images may be ``data:`` URIs (QR codes are rendered server-side as SVG).
The API's interactive docs page too: Swagger UI is vendored (``web/api_docs.py``).
"""

from __future__ import annotations

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


#: every header added, encoded once
ALL: tuple[tuple[bytes, bytes], ...] = (*HEADERS, (b"content-security-policy", CSP.encode()))
_NAMES = frozenset(name for name, _ in ALL)


def add_security_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Add the headers to an answer's (in place), unless the app set them already; the
    edge (:class:`cardvault.web.edge.Edge`) calls it for every answer."""
    present = {name.lower() for name, _ in headers} & _NAMES
    headers.extend((n, v) for n, v in ALL if n not in present)
