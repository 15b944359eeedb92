"""Reading a QR code on a page the way the holder's phone does: the page's SVG image drawn
as a PNG and decoded by zbarimg, through the reference authenticator's own reader."""

from __future__ import annotations

import base64
import html
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import unquote

from cardvault.clients.authenticator.core import decode_qr_image

IMG = re.compile(r'<img class="qr" src="([^"]+)"')
STEP = re.compile(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?")


def image_src(page: str) -> str:
    """The data: URI of the (only) QR code image on a page."""
    found = IMG.findall(page)
    assert len(found) == 1, f"{len(found)} QR code images on the page"
    return html.unescape(found[0])


def svg_of(src: str) -> str:
    head, _, body = src.partition(",")
    assert head.startswith("data:image/svg+xml"), head
    return base64.b64decode(body).decode() if ";base64" in head else unquote(body)


def _found(pattern: str, svg: str) -> str:
    match = re.search(pattern, svg)
    assert match, f"no {pattern} in the QR code's SVG"
    return match.group(1)


def dark_modules(svg: str) -> tuple[int, set[tuple[int, int]]]:
    """The symbol's size in modules (border included) and its dark modules, from segno's
    one-path SVG: ``M x y`` and ``m dx dy`` move, ``h n`` draws n dark modules on row y."""
    width = float(_found(r"width='([\d.]+)'", svg))
    scale = float(_found(r"scale\(([\d.]+)\)", svg))
    path = _found(r" d='([^']+)'", svg)
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for op, a, b in STEP.findall(path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(float(a))))
            x += float(a)
    return round(width / scale), dark


def png(size: int, dark: set[tuple[int, int]], scale: int = 4) -> bytes:
    """A greyscale PNG of the modules, black on white."""
    rows = b"".join(
        b"\x00" + bytes(0 if (x // scale, y // scale) in dark else 255 for x in range(size * scale))
        for y in range(size * scale)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size * scale, size * scale, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def read_page_qr(page: str, tmp: Path) -> str:
    """The text of the QR code shown on a page, as a phone's camera reads it."""
    image = tmp / "page-qr.png"
    image.write_bytes(png(*dark_modules(svg_of(image_src(page)))))
    return decode_qr_image(image)
