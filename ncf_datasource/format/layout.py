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
VERSION_MINOR = 0
HEADER = struct.Struct("<4sHH")
TRAILER = struct.Struct("<QIHHB3x4s")
KNOWN_FEATURES: frozenset[str] = frozenset()
"""Names a footer may list in ``required_features`` that this reader understands."""


def crc32c(data) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    return _crc32c.crc32c(data)


def header() -> bytes:
    return HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR)


def footer_bytes(footer: dict[str, Any], level: int) -> tuple[bytes, bytes]:
    """``(footer bytes, trailer bytes)`` for a footer document."""
    text = json.dumps(footer, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    codec, _, payload = compress(text, level)
    trailer = TRAILER.pack(len(payload), crc32c(payload), VERSION_MAJOR, VERSION_MINOR, codec, MAGIC)
    return payload, trailer


def parse_footer(payload, codec: int, max_size: int) -> Any:
    """Decode footer bytes into the JSON document (``max_size`` bounds decompression)."""
    if codec == CODEC_RAW:
        text = bytes(payload)
    else:
        try:
            size = zstandard.frame_content_size(payload)
        except zstandard.ZstdError as exc:
            raise ValueError(f"footer: {exc}") from None
        if size < 0 or size > max_size:
            raise ValueError(f"footer claims {size} bytes uncompressed")
        text = decompress(codec, size, payload)
    return json.loads(text)
