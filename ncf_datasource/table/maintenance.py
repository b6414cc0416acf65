"""Table maintenance: compaction (bin-packing, optional sort for the learned index) and vacuum."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pyarrow as pa

from ..format.stats import from_json
from .errors import NCFTableError, VacuumRetentionError
from .files import DATA_SUFFIX, read_data_file
from .log import LOG_DIR, DataFile, Snapshot
from .retries import DEFAULT_RETRIES, with_retries

if TYPE_CHECKING:  # for annotations only: table imports this module
    from .table import NCFTable

SAFE_RETENTION_HOURS = 168.0
SMALL_FILE_FRACTION = 0.75


def plan_bins(snapshot: Snapshot, target_bytes: int, sort_by: str | None) -> list[list[DataFile]]:
    """Groups of files to rewrite together, each about ``target_bytes`` of input.

    Without ``sort_by`` only files smaller than 3/4 of the target are packed, and a group of
    one file is left alone. With ``sort_by`` every file not yet indexed on that key is taken,
    in the order of its smallest key, so the rewritten files cover ranges that barely overlap.
    """
    files = list(snapshot.files.values())
    if sort_by:
        t = snapshot.schema.field(sort_by).type
        done = [f for f in files if sort_by in f.indexed and f.size >= SMALL_FILE_FRACTION * target_bytes]
        candidates = [f for f in files if f not in done]

        def first_key(f: DataFile):
            low = (f.stats_of(sort_by) or {}).get("min")
            return (low is None, from_json(low, t) if low is not None else 0)

        try:
            candidates.sort(key=first_key)
        except TypeError:
            pass
    else:
        candidates = [f for f in files if f.size < SMALL_FILE_FRACTION * target_bytes]
    bins: list[list[DataFile]] = []
    current: list[DataFile] = []
    size = 0
    for f in candidates:
        if current and size + f.size > target_bytes:
            bins.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        bins.append(current)
    return [b for b in bins if len(b) > 1 or (sort_by and sort_by not in b[0].indexed)]


def compact(
    table: NCFTable, target_file_mb: float = 128, sort_by: str | None = None, retries: int = DEFAULT_RETRIES
) -> int | None:
    """Rewrite small files into files of about ``target_file_mb`` in one commit.

    With ``sort_by`` rows are sorted by that column so each new file carries a learned
    index on it. The commit changes no data (``data_change`` false), so concurrent appends
    never conflict with it; a concurrent delete/update of one of its input files does, and
    the compaction then starts again (``retries`` times). Returns the version, or None when
    there was nothing to compact.

    Example (three appends, three small files, compacted into one sorted by ``event_id``)::

        >>> import pyarrow as pa
        >>> from ncf_datasource.table import NCFTable
        >>> t = NCFTable.create("warehouse/events", schema=pa.schema([("event_id", pa.int64())]))
        >>> for start in (20, 0, 10):
        ...     _ = t.append(pa.table({"event_id": list(range(start, start + 10))}))
        >>> compact(t, target_file_mb=64, sort_by="event_id")
        4
        >>> len(t.snapshot().files), t.read()["event_id"].to_pylist() == list(range(30))
        (1, True)
    """
    if target_file_mb <= 0:
        raise NCFTableError(f"{table.path}: target_file_mb must be positive, got {target_file_mb}")
    target = int(target_file_mb * (1 << 20))

    def attempt() -> int | None:
        snapshot = table.snapshot()
        if sort_by is not None and sort_by not in snapshot.schema.names:
            raise NCFTableError(f"{table.path}: cannot sort by unknown column {sort_by!r}")
        bins = plan_bins(snapshot, target, sort_by)
        if not bins:
            return None
        tx = table.begin("COMPACT", snapshot, {"target_file_mb": target_file_mb, "sort_by": sort_by})
        tx.data_change = False
        try:
            for group in bins:
                data = pa.concat_tables(
                    [read_data_file(snapshot.absolute(f), snapshot.schema) for f in group]
                )
                if sort_by:
                    data = data.sort_by(sort_by)
                in_bytes, in_rows = sum(f.size for f in group), max(sum(f.rows for f in group), 1)
                rows_per_file = max(1, int(target * in_rows / max(in_bytes, 1)))
                for start in range(0, data.num_rows, rows_per_file):
                    chunk = data.slice(start, rows_per_file)
                    tx.add(
                        table.write_file(
                            chunk,
                            snapshot,
                            prefix="compact",
                            data_change=False,
                            sort_key=sort_by or snapshot.sort_key,
                        )
                    )
                for f in group:
                    tx.remove(f)
            tx.metrics["num_bins"] = len(bins)
            return tx.commit()
        except BaseException:
            tx.abort()
            raise

    return with_retries(attempt, retries)


def vacuum(
    table: NCFTable, retention_hours: float | None = None, force: bool = False, dry_run: bool = False
) -> list[str]:
    """Delete files the current version does not use and no version of the last
    ``retention_hours`` (default 168) used: old data files and leftovers of failed writes.

    Time travel to versions older than the retention may fail afterwards. A retention below
    168 hours could delete files a running writer or a long reader still needs, so it is
    refused unless ``force``. Returns the deleted paths (relative); ``dry_run`` deletes nothing.
    """
    retention = SAFE_RETENTION_HOURS if retention_hours is None else float(retention_hours)
    if retention < 0:
        raise VacuumRetentionError(f"{table.path}: retention must not be negative, got {retention}")
    if retention < SAFE_RETENTION_HOURS and not force:
        raise VacuumRetentionError(
            f"{table.path}: retention {retention:g} h is below the safe minimum of "
            f"{SAFE_RETENTION_HOURS:g} h; pass force to vacuum anyway "
            "(time travel and running writers may break)"
        )
    now = time.time()
    cutoff_ms = int((now - retention * 3600) * 1000)
    snapshot = table.snapshot()
    keep = set(snapshot.files)
    for version in range(snapshot.version, -1, -1):
        commit = table.log.read(version)
        if int(commit["timestamp"]) < cutoff_ms:
            break
        keep.update(r["path"] for r in commit.get("remove") or ())
    deleted = []
    for folder, dirs, names in os.walk(table.path):
        rel_folder = os.path.relpath(folder, table.path)
        in_log = rel_folder == LOG_DIR
        dirs[:] = (
            [d for d in dirs if not d.startswith(".") and (d == LOG_DIR or not d.startswith("_"))]
            if rel_folder == "."
            else dirs
        )
        for name in names:
            rel = name if rel_folder == "." else os.path.join(rel_folder, name)
            leftover = name.startswith(".") and name.endswith(".tmp")
            if in_log and not leftover:
                continue
            if not (leftover or name.endswith(DATA_SUFFIX)) or rel in keep:
                continue
            path = os.path.join(folder, name)
            try:
                if os.path.getmtime(path) * 1000 >= cutoff_ms:
                    continue
                if not dry_run:
                    os.unlink(path)
            except FileNotFoundError:
                continue
            deleted.append(rel)
    return sorted(deleted)
