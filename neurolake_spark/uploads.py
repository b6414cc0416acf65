"""Files uploaded into the raw landing zone: ``<raw>/<source>/date=YYYY-MM-DD/<file>``.

What ``POST /api/v1/data/upload`` calls. The file name comes from outside, so it is checked,
not cleaned into something else: a plain name (letters, digits, ``.``, ``_``, ``-``; not
hidden) with the extension of the source's declared format, and the final path is proven to
stay inside the raw zone (:func:`ncf_datasource.table.paths.inside`). The bytes are streamed
to a hidden temporary file beside the target (Spark skips hidden files), counted against a
limit and hashed (SHA-256), then linked to the final name, which fails if a file of that name
exists: an upload never replaces a landed file::

    landed = land_file(settings, "orders", "2026-11-30", "orders-extra.csv", stream, max_bytes=10**8)
    landed.sha256, landed.bytes
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from neurolake_spark.config import Settings
from neurolake_spark.errors import BadInputError, NeuroLakeError
from neurolake_spark.parsing import parse_date

CHUNK_BYTES = 1 << 20
EXTENSIONS = {"csv": (".csv",), "json": (".json", ".jsonl"), "ncf": (".ncf",), "parquet": (".parquet",)}
"""The file extensions each source format takes."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,119}")


class UploadExistsError(NeuroLakeError):
    """A file of that name was already landed for the source and date."""


class UploadTooLargeError(BadInputError):
    """The uploaded file is larger than the limit."""


class UnknownSourceError(BadInputError):
    """The pipeline definition declares no source of that name."""


@dataclass(frozen=True)
class LandedFile:
    """A file landed in the raw zone: where (relative to the raw zone), how big, its SHA-256."""

    source: str
    batch_date: str
    file: str
    relative_path: str
    bytes: int
    sha256: str


def checked_file_name(name: str | None, source: str, source_format: str) -> str:
    """The uploaded file's name if it is a plain name (no folder) with the source format's extension."""
    base = name or ""
    if not _NAME.fullmatch(base) or ".." in base:
        raise BadInputError(
            "a file name is 1 to 120 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        )
    allowed = EXTENSIONS[source_format]
    if not base.lower().endswith(allowed):
        raise BadInputError(
            f"source '{source}' takes {source_format} files ({', '.join(allowed)}); got {base!r}"
        )
    return base


def land_file(
    settings: Settings, source: str, batch_date: str, file_name: str | None, stream: BinaryIO, max_bytes: int
) -> LandedFile:
    """Copy ``stream`` to ``<raw>/<source>/date=<batch_date>/<file_name>`` (see the module docstring)."""
    from ncf_datasource.table.paths import UnsafePathError, inside

    sources = settings.pipeline_definition().sources
    if source not in sources:
        raise UnknownSourceError(f"unknown source '{source}' (sources: {', '.join(sorted(sources))})")
    day = parse_date(batch_date).isoformat()
    name = checked_file_name(file_name, source, sources[source].format)
    relative = f"{source}/date={day}/{name}"
    raw = settings.raw_dir
    raw.mkdir(parents=True, exist_ok=True)
    try:
        target = inside(raw, relative)
    except UnsafePathError:
        raise BadInputError(f"the landing folder of source '{source}' leaves the raw zone") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".upload-{uuid.uuid4().hex}.tmp")
    digest, size = hashlib.sha256(), 0
    try:
        with open(temporary, "xb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLargeError(f"the file is larger than {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise BadInputError("the file is empty")
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise UploadExistsError(
                f"{relative} was landed before; upload under another name (files are never replaced)"
            ) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return LandedFile(source, day, name, relative, size, digest.hexdigest())
