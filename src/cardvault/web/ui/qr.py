"""QR codes on pages: a pairing code for the phone, drawn as an inline SVG image."""

from __future__ import annotations

import segno


def qr_data_uri(text: str) -> str:
    """A QR code as an SVG data: URI (allowed by the CSP's img-src; no script, no request)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=6, border=4))
