"""File framing: header, trailer, footer serialization and checksums (see SPEC.md, "Layout").

::

    header   = magic "NCF1" | u16 major | u16 minor                       (8 bytes)
    body     = column chunks, dictionary blocks, pages, index blocks
    footer   = JSON document, zstd-compressed (codec byte in the trailer)
    trailer  = u64 footer length | u32 footer crc32c | u16 major | u16 minor
               | u8 footer codec | 3 zero bytes | magic "NCF1"             (24 bytes)
"""

from __future__ import annotations

import json
import struct
from typing import Any

import crc32c as _crc32c
import zstandard

from .encodings import CODEC_RAW, compress, decompress

MAGIC = b"NCF1"
VERSION_MAJOR = 1
VERSION_MINOR = 1
HEADER = struct.Struct("<4sHH")
TRAILER = struct.Struct("<QIHHB3x4s")
KNOWN_FEATURES: frozenset[str] = frozenset()
"""Names a footer may list in ``required_features`` that this reader understands."""
MAX_FOOTER_BYTES = 1 << 30
FOOTER_FLOOR_BYTES = 1 << 20
FOOTER_RATIO = 16


def crc32c(data) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    return _crc32c.crc32c(data)


def header() -> bytes:
    return HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR)


def footer_limit(file_size: int) -> int:
    """Largest uncompressed size a zstd footer may declare in a file of ``file_size`` bytes:
    a footer describes the data before it, so it cannot honestly be much larger than the file
    (``max(1 MiB, 16 x file size)``, at most 1 GiB). Readers refuse larger ones before
    decompressing; writers store such a footer uncompressed instead."""
    return min(MAX_FOOTER_BYTES, max(FOOTER_FLOOR_BYTES, FOOTER_RATIO * file_size))


def footer_bytes(footer: dict[str, Any], level: int, body_end: int) -> tuple[bytes, bytes]:
    """``(footer bytes, trailer bytes)`` for a footer document that follows ``body_end`` bytes."""
    text = json.dumps(footer, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    codec, _, payload = compress(text, level)
    if codec != CODEC_RAW and len(text) > footer_limit(body_end + len(payload) + TRAILER.size):
        codec, payload = CODEC_RAW, text
    trailer = TRAILER.pack(len(payload), crc32c(payload), VERSION_MAJOR, VERSION_MINOR, codec, MAGIC)
    return payload, trailer


def parse_footer(payload, codec: int, max_size: int) -> Any:
    """Decode footer bytes into the JSON document; a zstd footer that declares more than
    ``max_size`` bytes is refused before decompressing, and decompression stops there."""
    if codec == CODEC_RAW:
        text = bytes(payload)
    else:
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as exc:
            raise ValueError(f"footer: {exc}") from None
        if size < 0 or size > max_size:
            raise ValueError(
                f"zstd footer declares {size} bytes, more than a file of this size can describe ({max_size})"
            )
        text = decompress(codec, size, payload)
    return json.loads(text)
