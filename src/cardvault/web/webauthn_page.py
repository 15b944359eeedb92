"""The security-key test page and the script other pages reuse (``/webauthn/…``).

Served from the package with a strict Content-Security-Policy: scripts only from this
origin, no inline code, no frames. The vRA Manager includes ``cardvault-webauthn.js``
the same way.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(prefix="/webauthn", include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
FILES = {
    "test": ("test.html", "text/html; charset=utf-8"),
    "cardvault-webauthn.js": ("cardvault-webauthn.js", "text/javascript; charset=utf-8"),
    "test-page.js": ("test-page.js", "text/javascript; charset=utf-8"),
    "test.css": ("test.css", "text/css; charset=utf-8"),
}


def _asset(name: str) -> Response:
    filename, media_type = FILES[name]
    body = resources.files("cardvault.web").joinpath("static", "webauthn", filename).read_bytes()
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@router.get("/test")
def test_page() -> Response:
    """Try a security key: sign in with it, or register one as an RA."""
    return _asset("test")


@router.get("/{name}")
def asset(name: str) -> Response:
    if name not in FILES or name == "test":
        return Response(status_code=404)
    return _asset(name)
