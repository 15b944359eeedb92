"""QR codes the operator shows the holder: drawn in the terminal, optionally saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import segno


def drawn(uri: str, png: Path | None = None) -> str:
    """The QR code of ``uri`` as terminal text; also written to ``png`` when given."""
    qr = segno.make(uri, error="m")
    if png:
        qr.save(str(png), scale=6, border=4)  # 4 modules: the quiet zone the QR standard asks
    buf = io.StringIO()
    qr.terminal(out=buf, compact=True)
    return buf.getvalue()
