"""The sign-in buttons' icons (web/static/images/authentication_backends/*.png), drawn here.

Simple placeholders of our own — a coloured disc with a letter — not the providers'
logos (whose files are theirs). Written with the standard library (zlib, struct):
keyhouse has no imaging dependency. ``python -m tests.auth_icons`` rewrites the
files; tests/web/test_auth_icons.py checks the committed files are exactly these.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

ICON_DIR = (
    Path(__file__).resolve().parents[1] / "src/keyhouse/web/static/images/authentication_backends"
)
SIZE = 40  # pixels; the buttons show them at 20 (sharp on 2x screens)
SCALE = 4  # each font pixel is SCALE x SCALE

# 5x7 glyphs, "#" inked.
GLYPHS = {
    "A": [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
    "G": [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".###."],
    "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
}

# file name (Zulip's names) -> (disc colour, letter colour, letter)
ICONS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], str]] = {
    "github-icon.png": ((0x24, 0x29, 0x2F), (0xFF, 0xFF, 0xFF), "G"),
    "googl_e-icon.png": ((0x42, 0x85, 0xF4), (0xFF, 0xFF, 0xFF), "G"),
    "gitlab-icon.png": ((0xE2, 0x43, 0x29), (0xFF, 0xFF, 0xFF), "L"),
    "azuread-icon.png": ((0x00, 0x78, 0xD4), (0xFF, 0xFF, 0xFF), "A"),
    "apple-icon.png": ((0xA2, 0xAA, 0xAD), (0x00, 0x00, 0x00), "A"),
}


def _disc_alpha(x: int, y: int) -> int:
    """Coverage of pixel (x, y) by the disc, 4x4 supersampled: smooth edges."""
    r = SIZE / 2
    inside = 0
    for sy in range(4):
        for sx in range(4):
            dx = x + (sx + 0.5) / 4 - r
            dy = y + (sy + 0.5) / 4 - r
            inside += dx * dx + dy * dy <= r * r
    return round(255 * inside / 16)


def render(name: str) -> bytes:
    """The PNG file's bytes (RGBA, 8 bits a channel), the same on every run."""
    disc, ink, letter = ICONS[name]
    glyph = GLYPHS[letter]
    left = (SIZE - 5 * SCALE) // 2
    top = (SIZE - 7 * SCALE) // 2
    rows = []
    for y in range(SIZE):
        row = bytearray([0])  # filter type: none
        for x in range(SIZE):
            gx, gy = (x - left) // SCALE, (y - top) // SCALE
            inked = 0 <= gx < 5 and 0 <= gy < 7 and x >= left and y >= top
            colour = ink if inked and glyph[gy][gx] == "#" else disc
            row += bytes(colour) + bytes([_disc_alpha(x, y)])
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def pixels(png: bytes) -> tuple[bytes, bytes]:
    """(IHDR, decompressed image data) of a PNG: what it shows, whatever zlib packed it."""
    header, data, at = b"", b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data += body
        at += 12 + length
    return header, zlib.decompress(data)


if __name__ == "__main__":
    ICON_DIR.mkdir(parents=True, exist_ok=True)
    for icon in ICONS:
        (ICON_DIR / icon).write_bytes(render(icon))
        print(ICON_DIR / icon)
