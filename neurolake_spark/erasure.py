"""Erasure requests beyond one delete: the durable register, quarantined raw records, and
statistics in table logs.

- :class:`ErasureRegister`: every erasure (``neurolake erase``, an ``erase`` fix file) is kept
  as one JSON file under ``<warehouse>/_erasures/``, so every later ``neurolake fixes`` run
  (the nightly DAG's bulk_fixes task) erases the same keys again from rows the source re-sent.
  It holds the key values (identifiers), never the erased rows' other values.
- :func:`quarantined_with_key`: malformed raw records in ``quarantine.ingest`` have no typed
  columns; the condition reads the key field out of the raw text (JSON path, or the CSV field
  at the key's position in the source schema), so an erasure reaches them too.
- :func:`scrub_statistics`: a data file's min/max statistics repeat values of its rows in the
  table's log (Delta commit JSON and checkpoints, NCF commits and checkpoints), and the log keeps
  the entries of files an erasure removed. After an erasure and a vacuum, string bounds are
  dropped from every file entry of the log, so no erased value stays there. Readers treat a
  missing bound as unknown (no data skipping on string columns of the files present then).

Example::

    register = ErasureRegister(lh.settings.warehouse)
    register.record("silver.customers", "customer_id", [1042], origin="neurolake erase", run_id="r-1")
    for request in register.requests(): ...
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column
from pyspark.sql import functions as F

from neurolake_spark.atomic_files import write_atomic
from neurolake_spark.errors import PipelineError
from neurolake_spark.pipeline_config import PipelineDefinition
from neurolake_spark.tables import TableRef

REGISTER_DIR = "_erasures"


@dataclass(frozen=True)
class ErasureRequest:
    """One recorded erasure: the rows whose ``key`` is in ``values``, from every table with ``key``."""

    anchor: str
    key: str
    values: list[Any]
    origin: str
    run_id: str
    recorded_at: str


class ErasureRegister:
    """The erasure requests of a warehouse, one JSON file each (written atomically, named after
    the request, so recording it again replaces it)."""

    def __init__(self, warehouse: Path):
        self.dir = Path(warehouse) / REGISTER_DIR

    def record(self, anchor: str, key: str, values: list[Any], origin: str, run_id: str) -> ErasureRequest:
        """Keep a request; returns it. Values are stored as JSON (numbers stay numbers)."""
        request = ErasureRequest(
            anchor,
            key,
            [v if isinstance(v, (int, str)) else str(v) for v in values],
            origin,
            run_id,
            datetime.now(UTC).isoformat(timespec="microseconds"),
        )
        # named after what it erases: recording the same request again (a re-run) replaces it
        name = hashlib.sha256(json.dumps([anchor, key, request.values, origin]).encode()).hexdigest()[:32]
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / f"{name}.json", json.dumps(asdict(request)))
        return request

    def requests(self) -> list[ErasureRequest]:
        """Every recorded request, oldest first; a damaged file is an error, never skipped."""
        found = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                found.append(ErasureRequest(**json.loads(path.read_text(encoding="utf-8"))))
            except (ValueError, TypeError) as exc:
                raise PipelineError(f"erasure register {path}: not a valid request ({exc})") from None
        return sorted(found, key=lambda r: r.recorded_at)


def quarantined_with_key(definition: PipelineDefinition, key: str, values: list[Any]) -> Column | None:
    """The condition on ``quarantine.ingest`` for raw records whose ``key`` field is in ``values``:
    per source whose schema has ``key``, its records (``source``) with that field read from the raw
    text as text. None when no source has the column."""
    from neurolake_spark.ingest import source_schema

    wanted = [str(v) for v in values]
    parts = []
    for name, source in definition.sources.items():
        columns = source_schema(name, source).fieldNames()
        if key not in columns or source.format not in ("json", "csv"):
            continue
        if source.format == "json":
            field = F.get_json_object(F.col("raw_record"), f"$.{key}")
        else:
            as_text = ", ".join(f"`{c}` STRING" for c in columns)
            field = F.from_csv(F.col("raw_record"), as_text).getField(key)
        parts.append((F.col("source") == F.lit(name)) & F.trim(field).isin(wanted))
    if not parts:
        return None
    condition = parts[0]
    for part in parts[1:]:
        condition = condition | part
    return condition


def _strip_bounds(stats: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    """NCF column stats without ``min``/``max`` of columns not in ``kept`` (non-string columns)."""
    return {
        column: {k: v for k, v in s.items() if column in kept or k not in ("min", "max")}
        for column, s in stats.items()
    }


def _delta_non_string_columns(schema: dict[str, Any]) -> set[tuple[str, ...]]:
    """Paths of the non-string leaf columns of a Delta schema (``schemaString`` parsed)."""
    kept: set[tuple[str, ...]] = set()

    def walk(fields: list[dict[str, Any]], prefix: tuple[str, ...]) -> None:
        for field in fields:
            kind = field["type"]
            if isinstance(kind, dict) and kind.get("type") == "struct":
                walk(kind["fields"], (*prefix, field["name"]))
            elif kind not in ("string", "binary") and not isinstance(kind, dict):
                kept.add((*prefix, field["name"]))

    walk(schema.get("fields", []), ())
    return kept


def _delta_stats(text: str | None, kept: set[tuple[str, ...]]) -> str | None:
    """Delta ``stats`` JSON without min/max values of columns not known to be non-string."""
    if not text:
        return text
    stats = json.loads(text)

    def prune(bounds: dict[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
        out = {}
        for name, value in bounds.items():
            if isinstance(value, dict):
                out[name] = prune(value, (*prefix, name))
            elif (*prefix, name) in kept:
                out[name] = value
        return out

    for side in ("minValues", "maxValues"):
        if side in stats:
            stats[side] = prune(stats[side], ())
    return json.dumps(stats, separators=(",", ":"))


def _null_strings(array: pa.StructArray) -> pa.StructArray:
    """``array`` with every string or binary leaf (nested structs included) set to null."""
    children = []
    for i, field in enumerate(array.type):
        child = array.field(i)
        if pa.types.is_struct(field.type):
            child = _null_strings(child)
        elif pa.types.is_string(field.type) or pa.types.is_binary(field.type):
            child = pa.nulls(len(child), field.type)
        children.append(child)
    return pa.StructArray.from_arrays(children, fields=list(array.type), mask=array.is_null())


def _without_string_bounds(parsed: pa.StructArray) -> pa.StructArray:
    """A checkpoint's ``stats_parsed`` with the string bounds in ``minValues``/``maxValues`` null."""
    names = [f.name for f in parsed.type]
    children = [parsed.field(i) for i in range(len(names))]
    for side in ("minValues", "maxValues"):
        if side in names and pa.types.is_struct(parsed.type[names.index(side)].type):
            children[names.index(side)] = _null_strings(children[names.index(side)])
    return pa.StructArray.from_arrays(children, fields=list(parsed.type), mask=parsed.is_null())


def _drop_hadoop_checksum(path: Path) -> None:
    """Hadoop's local filesystem keeps ``.<name>.crc`` beside each file it wrote and checks it on
    read: a file rewritten here loses it (a missing checksum is not checked)."""
    (path.parent / f".{path.name}.crc").unlink(missing_ok=True)


def _scrub_delta(ref: TableRef) -> int:
    log = ref.path / "_delta_log"
    commits = sorted(log.glob("[0-9]" * 20 + ".json"))
    checkpoints = sorted(log.glob("[0-9]" * 20 + ".checkpoint*.parquet"))
    schema: dict[str, Any] = {}
    for checkpoint in checkpoints[-1:]:  # the newest metadata action names the columns' types
        rows = pq.read_table(checkpoint, columns=["metaData"]).column("metaData").to_pylist()
        schema = next(json.loads(r["schemaString"]) for r in rows if r and r.get("schemaString"))
    for commit in commits:
        for line in commit.read_text(encoding="utf-8").splitlines():
            if '"metaData"' in line:
                schema = json.loads(json.loads(line)["metaData"]["schemaString"])
    kept = _delta_non_string_columns(schema)
    changed = 0
    for commit in commits:
        lines = commit.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            action = json.loads(line) if line.strip() else None
            for kind in ("add", "remove"):
                if action and kind in action and action[kind].get("stats"):
                    action[kind]["stats"] = _delta_stats(action[kind]["stats"], kept)
            out.append(line if action is None else json.dumps(action, separators=(",", ":")))
        if out != lines:
            write_atomic(commit, "\n".join(out) + "\n")
            _drop_hadoop_checksum(commit)
            changed += 1
    for checksum in sorted(log.glob("[0-9]" * 20 + ".crc")):  # Delta's version checksums
        state = json.loads(checksum.read_text(encoding="utf-8"))
        files = state.get("allFiles") or []  # copies of the add actions, stats included
        for action in files:
            if action.get("stats"):
                action["stats"] = _delta_stats(action["stats"], kept)
        if files:
            write_atomic(checksum, json.dumps(state, separators=(",", ":")))
            _drop_hadoop_checksum(checksum)
            changed += 1
    for checkpoint in checkpoints:
        table = pq.read_table(checkpoint)
        for kind in ("add", "remove"):
            if kind not in table.column_names:
                continue
            column = table.column(kind).combine_chunks()
            names = [f.name for f in column.type]
            if "stats" not in names:
                continue
            children = [column.field(i) for i in range(len(names))]
            stats = [_delta_stats(s, kept) for s in children[names.index("stats")].to_pylist()]
            children[names.index("stats")] = pa.array(stats, pa.string())
            if "stats_parsed" in names:  # the same statistics as a struct
                parsed = children[names.index("stats_parsed")]
                children[names.index("stats_parsed")] = _without_string_bounds(parsed)
            rebuilt = pa.StructArray.from_arrays(children, fields=list(column.type), mask=column.is_null())
            table = table.set_column(table.column_names.index(kind), kind, rebuilt)
        temporary = checkpoint.with_name(f".{checkpoint.name}.{uuid.uuid4().hex[:8]}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, checkpoint)
        _drop_hadoop_checksum(checkpoint)
        changed += 1
    return changed


def _scrub_ncf(ref: TableRef) -> int:
    from ncf_datasource.table import NCFTable

    table = NCFTable(ref.path)
    schema = table.snapshot().schema
    kept = {
        f.name
        for f in schema
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type))
    }
    changed = 0
    for path in sorted(table.log.dir.glob("*.json")):
        entry = json.loads(path.read_bytes())
        before = json.dumps(entry)
        for kind in ("add", "remove", "files"):  # commits add and remove, checkpoints list files
            for action in entry.get(kind) or () if isinstance(entry, dict) else ():
                if isinstance(action, dict) and action.get("stats"):
                    action["stats"] = _strip_bounds(action["stats"], kept)
        if json.dumps(entry) != before:
            write_atomic(path, json.dumps(entry, separators=(",", ":")))
            changed += 1
    return changed


def scrub_statistics(ref: TableRef) -> int:
    """Drop the string min/max statistics of every file entry in ``ref``'s log (Delta commits
    and checkpoints, NCF commits and checkpoints); returns the number of log files rewritten.

    Run it only while no other command writes the table (``erase`` holds the exclusive lock)."""
    return _scrub_ncf(ref) if ref.format == "ncf" else _scrub_delta(ref)
