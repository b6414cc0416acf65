"""``inspect``: the footer of an NCF file as a JSON-serialisable dict, and its text rendering."""

from __future__ import annotations

import os
from typing import Any

from .reader import NCFFile
from .types import spark_type_name


def inspect(path: str | os.PathLike) -> dict[str, Any]:
    """Describe an NCF file: version, schema with tags, metadata, row groups, encodings,
    statistics, byte sizes and learned indexes. Only the footer is read."""
    with NCFFile(path) as f:
        footer = f.footer
        fields = []
        for fj, fa in zip(footer["schema"], f.schema):
            fields.append(
                {
                    "name": fa.name,
                    "type": spark_type_name(fa.type),
                    "arrow_type": str(fa.type),
                    "nullable": fa.nullable,
                    "tags": dict(fj.get("tags") or {}),
                }
            )
        groups = []
        for rg in f.row_groups:
            cols = []
            for name, c in rg.columns.items():
                cols.append(
                    {
                        "name": name,
                        "encodings": list(c.encodings),
                        "pages": len(c.pages),
                        "dictionary_entries": c.dictionary[3] if c.dictionary else None,
                        "compressed_bytes": c.length,
                        "uncompressed_bytes": c.uncompressed_bytes,
                        "stats": dict(c.stats),
                    }
                )
            groups.append(
                {
                    "index": rg.index,
                    "first_row": rg.first_row,
                    "num_rows": rg.num_rows,
                    "page_rows": rg.page_rows,
                    "columns": cols,
                }
            )
        return {
            "path": f.path,
            "file_size": f.file_size,
            "format_version": f.version,
            "created_by": footer.get("created_by"),
            "num_rows": f.num_rows,
            "num_row_groups": f.num_row_groups,
            "sort_key": f.sort_key,
            "options": dict(footer.get("options") or {}),
            "schema": fields,
            "metadata": dict(f.metadata),
            "row_groups": groups,
            "indexes": [
                {k: v for k, v in m.items() if k != "block"} | {"bytes": m["block"][1]}
                for m in f.index_meta.values()
            ],
            "notes": list(footer.get("notes") or []),
        }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_inspect(info: dict[str, Any]) -> str:
    """Render the dict of :func:`inspect` as text for people."""
    lines = [
        f"NCF file {info['path']}",
        f"  format version {info['format_version']}, written by {info['created_by']}",
        f"  {info['num_rows']} rows in {info['num_row_groups']} row groups, {_size(info['file_size'])}",
    ]
    if info.get("sort_key"):
        lines.append(f"  sort key: {info['sort_key']}")
    lines.append("schema:")
    for f in info["schema"]:
        tags = ", ".join(f"{k}={v}" for k, v in f["tags"].items())
        null = "" if f["nullable"] else " not null"
        lines.append(f"  {f['name']}: {f['type']}{null}" + (f"  [{tags}]" if tags else ""))
    if info["metadata"]:
        lines.append("metadata:")
        lines += [f"  {k} = {v}" for k, v in info["metadata"].items()]
    for rg in info["row_groups"]:
        lines.append(
            f"row group {rg['index']}: rows {rg['first_row']}..{rg['first_row'] + rg['num_rows']} "
            f"({rg['num_rows']} rows, pages of {rg['page_rows']})"
        )
        for c in rg["columns"]:
            s = c["stats"]
            parts = [f"nulls={s.get('null_count')}"]
            if "min" in s:
                parts.append(f"min={s['min']!r} max={s['max']!r}")
            if "distinct_estimate" in s:
                parts.append(f"distinct~{s['distinct_estimate']}")
            if s.get("nan_count"):
                parts.append(f"nan={s['nan_count']}")
            lines.append(
                f"  {c['name']}: {'/'.join(c['encodings'])} {_size(c['compressed_bytes'])} "
                f"(raw {_size(c['uncompressed_bytes'])}) " + " ".join(parts)
            )
    for ix in info["indexes"]:
        lines.append(
            f"learned index on {ix['column']}: {ix['segments']} segments, error <= {ix['epsilon']} rows, "
            f"rows {ix['rows'][0]}..{ix['rows'][1]}"
        )
    lines += [f"note: {n}" for n in info["notes"]]
    return "\n".join(lines)
