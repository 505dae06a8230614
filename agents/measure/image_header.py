"""An image file's format and declared size, read from its first bytes before anything is decoded.

A small file can declare a huge picture (a 2.6 MB PNG of 30000x30000 pixels decodes to gigabytes), so
every loader asks `check_image_header` first and refuses what `image_limits.toml` does not allow.
Formats read here: PNG, JPEG, WEBP, BMP, GIF, TIFF and PNM; any other is refused by name.
"""

from __future__ import annotations

import os
import struct
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LIMITS_FILE = Path(__file__).with_name("image_limits.toml")
# key -> (environment override, smallest allowed, largest allowed)
LIMIT_KEYS: dict[str, tuple[str, int, int]] = {
    "max_pixels": ("M4_MAX_IMAGE_PIXELS", 1 << 16, 1 << 31),
    "max_file_bytes": ("M4_MAX_IMAGE_BYTES", 1 << 16, 1 << 34),
    "min_side": ("M4_MIN_IMAGE_SIDE", 1, 4096),
}
# How many leading bytes the header readers may look at (a JPEG's frame header can follow long EXIF data).
HEAD_BYTES = 1 << 20
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PNM")


class ImageHeaderError(ValueError):
    """The file's header is unreadable or declares a picture outside the limits; the message names it."""


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_file_bytes: int
    min_side: int


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int


def _limit(raw: dict[str, object], key: str) -> int:
    env, lo, hi = LIMIT_KEYS[key]
    value: object = raw.get(key)
    source = f"{LIMITS_FILE.name} {key}"
    if os.environ.get(env):
        source, value = f"${env}", os.environ[env].strip()
        try:
            value = int(str(value).replace("_", ""))
        except ValueError:
            raise ImageHeaderError(f"{source}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ImageHeaderError(f"{source}: expected an integer in {lo}..{hi}, got {value!r}")
    return value


def image_limits() -> ImageLimits:
    """The limits from image_limits.toml, each overridable by its environment variable (validated)."""
    raw = _limits_file()
    unknown = set(raw) - set(LIMIT_KEYS)
    if unknown:
        raise ImageHeaderError(f"{LIMITS_FILE.name}: unknown key(s) {sorted(unknown)}")
    return ImageLimits(**{key: _limit(raw, key) for key in LIMIT_KEYS})


@lru_cache(maxsize=1)
def _limits_file() -> dict[str, object]:
    with open(LIMITS_FILE, "rb") as fh:
        return dict(tomllib.load(fh))


def _png(h: bytes) -> tuple[int, int] | None:
    if len(h) >= 24 and h[12:16] == b"IHDR":
        return struct.unpack(">II", h[16:24])
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(h: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(h):
        if h[i] != 0xFF:
            return None
        marker = h[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", h[i + 2:i + 4])
        if marker in _JPEG_SOF and i + 9 <= len(h):
            height, width = struct.unpack(">HH", h[i + 5:i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp(h: bytes) -> tuple[int, int] | None:
    chunk = h[12:16]
    if chunk == b"VP8 " and len(h) >= 30:
        w, hh = struct.unpack("<HH", h[26:30])
        return w & 0x3FFF, hh & 0x3FFF
    if chunk == b"VP8L" and len(h) >= 25:
        (bits,) = struct.unpack("<I", h[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(h) >= 30:
        return int.from_bytes(h[24:27], "little") + 1, int.from_bytes(h[27:30], "little") + 1
    return None


def _bmp(h: bytes) -> tuple[int, int] | None:
    if len(h) < 26:
        return None
    (dib,) = struct.unpack("<I", h[14:18])
    if dib == 12:
        return struct.unpack("<HH", h[18:22])
    w, hh = struct.unpack("<ii", h[18:26])
    return abs(w), abs(hh)


def _gif(h: bytes) -> tuple[int, int] | None:
    return struct.unpack("<HH", h[6:10]) if len(h) >= 10 else None


def _tiff(h: bytes) -> tuple[int, int] | None:
    end = "<" if h[:2] == b"II" else ">"
    if len(h) < 8:
        return None
    (ifd,) = struct.unpack(end + "I", h[4:8])
    if ifd + 2 > len(h):
        return None
    (count,) = struct.unpack(end + "H", h[ifd:ifd + 2])
    found: dict[int, int] = {}
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(h):
            return None
        tag, kind = struct.unpack(end + "HH", h[at:at + 4])
        if tag in (256, 257):
            found[tag] = struct.unpack(end + ("H" if kind == 3 else "I"), h[at + 8:at + (10 if kind == 3 else 12)])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm(h: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    for line in h[2:4096].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            tokens.append(int(token))
            if len(tokens) == 2:
                return tokens[0], tokens[1]
    return None


def sniff_format(head: bytes) -> str | None:
    """The format a file's first bytes announce (one of FORMATS), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PNM"
    return None


_READERS = {"PNG": _png, "JPEG": _jpeg, "WEBP": _webp, "BMP": _bmp, "GIF": _gif, "TIFF": _tiff, "PNM": _pnm}


def read_header(head: bytes, name: str) -> ImageHeader:
    """Format and declared size from a file's first bytes; ImageHeaderError naming `name` if unreadable."""
    fmt = sniff_format(head)
    if fmt is None:
        raise ImageHeaderError(f"cannot read {name}: not a {', '.join(FORMATS)} image")
    try:
        size = _READERS[fmt](head)
    except struct.error:
        size = None
    if size is None:
        raise ImageHeaderError(f"cannot read {name}: its {fmt} header is truncated or corrupt")
    return ImageHeader(fmt, int(size[0]), int(size[1]))


def check_header(head: bytes, name: str, file_bytes: int | None = None,
                 limits: ImageLimits | None = None) -> ImageHeader:
    """read_header plus the limits: file size, declared pixel count and the smallest side."""
    limits = limits or image_limits()
    if file_bytes is not None and file_bytes > limits.max_file_bytes:
        raise ImageHeaderError(f"{name}: the file is {file_bytes} bytes, above the limit of {limits.max_file_bytes} "
                               f"({LIMIT_KEYS['max_file_bytes'][0]} raises it)")
    header = read_header(head, name)
    w, h = header.width, header.height
    if w * h > limits.max_pixels:
        raise ImageHeaderError(f"{name}: {w}x{h} pixels ({w * h} declared in its {header.format} header) is above "
                               f"the limit of {limits.max_pixels} pixels ({LIMIT_KEYS['max_pixels'][0]} raises it)")
    if min(w, h) < limits.min_side:
        raise ImageHeaderError(f"{name}: {w}x{h} is too small (each side must be at least {limits.min_side} px)")
    return header


def check_image_file(path: str | Path) -> ImageHeader:
    """The header check for a file on disk, reading only its first HEAD_BYTES; names the file."""
    p = Path(path)
    if not p.is_file():
        raise ImageHeaderError(f"image file not found: {p}")
    with open(p, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return check_header(head, p.name, p.stat().st_size)
