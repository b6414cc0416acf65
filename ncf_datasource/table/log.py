"""The commit log of an NCF table: ``_ncf_log/<version>.json`` files and checkpoints.

See ``ncf_datasource/TABLE_SPEC.md`` for the layout. A commit file is created with
``os.link`` from a fully written temporary file, so it appears whole or not at all and two
writers can never both create the same version.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..format.stats import from_json
from ..format.types import schema_from_json, schema_to_json
from ..format.writer import fsync_dir
from .errors import CorruptTableError, NCFTableError, NotATableError, TimeTravelError
from .paths import UnsafePathError, check_relative, inside

LOG_DIR = "_ncf_log"
LAST_CHECKPOINT = "_last_checkpoint"
CHECKPOINT_INTERVAL = 20
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.json$")


def commit_name(version: int) -> str:
    return f"{version:020d}.json"


def checkpoint_name(version: int) -> str:
    return f"{version:020d}.checkpoint.json"


@dataclass(frozen=True)
class DataFile:
    """One data file of a table, as an ``add`` action of the log records it.

    ``path`` is relative to the table folder; ``stats`` maps a column to its statistics over
    the whole file (the footer's JSON form: ``num_values``, ``null_count``, ``min``, ``max``).
    """

    path: str
    size: int
    rows: int
    row_groups: tuple[int, ...]
    stats: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    indexed: tuple[str, ...] = ()
    added_at: int = 0
    data_change: bool = True

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["row_groups"], out["indexed"] = list(self.row_groups), list(self.indexed)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DataFile:
        return cls(
            path=str(d["path"]),
            size=int(d["size"]),
            rows=int(d["rows"]),
            row_groups=tuple(int(n) for n in d.get("row_groups") or ()),
            stats=dict(d.get("stats") or {}),
            indexed=tuple(d.get("indexed") or ()),
            added_at=int(d.get("added_at") or 0),
            data_change=bool(d.get("data_change", True)),
        )

    def stats_of(self, column: str) -> dict[str, Any] | None:
        """Statistics of ``column`` in this file (None when unknown)."""
        return self.stats.get(column)


@dataclass
class Snapshot:
    """The state of a table at one version: schema, properties, live files, stream txns."""

    table_path: Path
    version: int
    timestamp: int
    schema: pa.Schema
    properties: dict[str, str]
    files: dict[str, DataFile]
    txns: dict[str, int]

    @property
    def num_rows(self) -> int:
        return sum(f.rows for f in self.files.values())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def sort_key(self) -> str | None:
        return self.properties.get("sort_key") or None

    def absolute(self, data_file: DataFile | str) -> str:
        """Absolute path of a data file of this table; :class:`CorruptTableError` if it is outside."""
        rel = data_file.path if isinstance(data_file, DataFile) else data_file
        try:
            return str(inside(self.table_path, rel))
        except UnsafePathError as exc:
            raise CorruptTableError(
                f"{self.table_path}: corrupt table: its log names a file outside it: {exc}"
            ) from None

    def prune(self, expr: Any) -> list[DataFile]:
        """Files whose statistics do not exclude a match of the bound filter ``expr``."""
        files = list(self.files.values())
        if expr is None:
            return files
        return [f for f in files if expr.might_match(f.stats_of)]

    def apply(self, version: int, commit: dict[str, Any]) -> None:
        """Advance this snapshot by one commit."""
        self.version, self.timestamp = version, int(commit["timestamp"])
        metadata = commit.get("metadata")
        if metadata:
            self.schema = schema_from_json(metadata["schema"], {})
            self.properties = dict(metadata.get("properties") or {})
        for removed in commit.get("remove") or ():
            self.files.pop(removed["path"], None)
        for added in commit.get("add") or ():
            data_file = _logged_file(self.table_path, added, f"version {version}")
            self.files[data_file.path] = data_file
        txn = commit.get("txn")
        if txn:
            self.txns[txn["app_id"]] = int(txn["version"])

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "timestamp": self.timestamp,
            "metadata": {"schema": schema_to_json(self.schema), "properties": self.properties},
            "files": [f.to_json() for f in self.files.values()],
            "txns": self.txns,
        }

    @classmethod
    def from_checkpoint(cls, table_path: Path, d: dict[str, Any]) -> Snapshot:
        files = {}
        for f in d["files"]:
            data_file = _logged_file(table_path, f, f"the checkpoint of version {d['version']}")
            files[data_file.path] = data_file
        return cls(
            table_path,
            int(d["version"]),
            int(d["timestamp"]),
            schema_from_json(d["metadata"]["schema"], {}),
            dict(d["metadata"].get("properties") or {}),
            files,
            {k: int(v) for k, v in (d.get("txns") or {}).items()},
        )


def _logged_file(table_path: Path, action: dict[str, Any], where: str) -> DataFile:
    """The data file an ``add`` action of the log names; its path must stay inside the table."""
    data_file = DataFile.from_json(action)
    try:
        check_relative(data_file.path)
    except UnsafePathError as exc:
        raise CorruptTableError(
            f"{table_path}: corrupt table: {where} adds a file outside the table folder: {exc}"
        ) from None
    return data_file


def merge_stats(parts: list[dict[str, Any]], t: pa.DataType) -> dict[str, Any]:
    """Statistics of a column over several chunks (row groups or files), in the footer's JSON form.

    A min/max is kept only when every chunk with non-null values has one.
    """
    out: dict[str, Any] = {
        "num_values": sum(int(p.get("num_values", 0)) for p in parts),
        "null_count": sum(int(p.get("null_count", 0)) for p in parts),
    }
    if any("nan_count" in p for p in parts):
        out["nan_count"] = sum(int(p.get("nan_count", 0)) for p in parts)
    bounds = [p for p in parts if "min" in p]
    if not bounds:
        return out
    if any(p["min"] is None or p["max"] is None for p in bounds):
        out["min"] = out["max"] = None
        return out
    try:
        out["min"] = min((p["min"] for p in bounds), key=lambda v: from_json(v, t))
        out["max"] = max((p["max"] for p in bounds), key=lambda v: from_json(v, t))
    except (TypeError, ValueError, ArithmeticError):
        out["min"] = out["max"] = None
    return out


def _write_tmp(directory: Path, payload: bytes) -> Path:
    tmp = directory / f".{uuid.uuid4().hex}.tmp"
    with open(tmp, "xb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


class CommitLog:
    """Reads and writes the ``_ncf_log`` folder of one table."""

    def __init__(self, table_path: str | os.PathLike):
        self.table_path = Path(table_path)
        self.dir = self.table_path / LOG_DIR

    def exists(self) -> bool:
        return self.dir.is_dir() and self.latest_version() is not None

    def versions(self) -> list[int]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))

    def latest_version(self) -> int | None:
        versions = self.versions()
        return versions[-1] if versions else None

    def read(self, version: int) -> dict[str, Any]:
        """The commit of ``version`` as a dict."""
        path = self.dir / commit_name(version)
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            raise TimeTravelError(f"{self.table_path}: version {version} does not exist") from None
        except ValueError as exc:
            raise NCFTableError(f"{path}: commit file is not valid JSON: {exc}") from None

    def write(self, version: int, commit: dict[str, Any]) -> bool:
        """Create the commit file of ``version``; False when another writer already created it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = _write_tmp(self.dir, json.dumps(commit, separators=(",", ":")).encode())
        try:
            os.link(tmp, self.dir / commit_name(version))
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        fsync_dir(self.dir)
        return True

    # ------------------------------------------------------------ checkpoints

    def write_checkpoint(self, snapshot: Snapshot) -> None:
        """Store the full state at ``snapshot.version`` so later reads replay few commits."""
        payload = json.dumps(snapshot.to_checkpoint(), separators=(",", ":")).encode()
        os.replace(_write_tmp(self.dir, payload), self.dir / checkpoint_name(snapshot.version))
        hint = json.dumps({"version": snapshot.version}).encode()
        os.replace(_write_tmp(self.dir, hint), self.dir / LAST_CHECKPOINT)

    def latest_checkpoint(self, at_most: int | None = None) -> int | None:
        """The newest checkpoint version ``<= at_most`` (the hint file first, then a listing)."""
        try:
            hinted = int(json.loads((self.dir / LAST_CHECKPOINT).read_bytes())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            hinted = None
        if (
            hinted is not None
            and (at_most is None or hinted <= at_most)
            and (self.dir / checkpoint_name(hinted)).exists()
        ):
            if at_most is None or at_most - hinted < CHECKPOINT_INTERVAL:
                return hinted
        found = [int(m.group(1)) for n in os.listdir(self.dir) if (m := _CHECKPOINT.match(n))]
        found = [v for v in found if at_most is None or v <= at_most]
        return max(found) if found else None

    # ------------------------------------------------------------ snapshots

    def snapshot(self, version: int | None = None, base: Snapshot | None = None) -> Snapshot:
        """The table state at ``version`` (default: the latest), replaying from ``base`` or a checkpoint."""
        latest = self.latest_version()
        if latest is None:
            raise NotATableError(f"{self.table_path}: not an NCF table (no commits in {LOG_DIR}/)")
        target = latest if version is None else version
        if target < 0 or target > latest:
            raise TimeTravelError(f"{self.table_path}: version {target} does not exist (latest is {latest})")
        if base is not None and base.version <= target and target - base.version <= CHECKPOINT_INTERVAL:
            snapshot = Snapshot(
                base.table_path,
                base.version,
                base.timestamp,
                base.schema,
                dict(base.properties),
                dict(base.files),
                dict(base.txns),
            )
        else:
            checkpoint = self.latest_checkpoint(target)
            if checkpoint is not None:
                data = json.loads((self.dir / checkpoint_name(checkpoint)).read_bytes())
                snapshot = Snapshot.from_checkpoint(self.table_path, data)
            else:
                first = self.read(0)
                if not first.get("metadata"):
                    raise NCFTableError(f"{self.table_path}: version 0 has no table metadata")
                snapshot = Snapshot(self.table_path, -1, 0, pa.schema([]), {}, {}, {})
        for v in range(snapshot.version + 1, target + 1):
            snapshot.apply(v, self.read(v))
        return snapshot

    def commits(self, start: int, stop: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(version, commit)`` for versions ``start .. stop`` (inclusive; default: the latest)."""
        stop = self.latest_version() if stop is None else stop
        for v in range(max(start, 0), (stop if stop is not None else -1) + 1):
            yield v, self.read(v)

    def version_at(self, timestamp_ms: int) -> int:
        """The last version committed at or before ``timestamp_ms`` (commit times only grow)."""
        versions = self.versions()
        if not versions:
            raise NotATableError(f"{self.table_path}: not an NCF table (no commits in {LOG_DIR}/)")

        def stamp(v: int) -> int:
            return int(self.read(v)["timestamp"])

        lo, hi = 0, len(versions) - 1
        if stamp(versions[0]) > timestamp_ms:
            raise TimeTravelError(
                f"{self.table_path}: timestamp {timestamp_ms} ms is before the first commit "
                f"({stamp(versions[0])} ms)"
            )
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if stamp(versions[mid]) <= timestamp_ms:
                lo = mid
            else:
                hi = mid - 1
        return versions[lo]
