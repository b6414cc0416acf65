"""Backups of tables and the catalog, and restores that prove they are equal.

A backup is a folder::

    <backup>/tables/<layer>/<table>/...   the data files and log entries of ONE committed version
    <backup>/catalog.db                   a consistent copy of a SQLite catalog (sqlite3 backup API)
    <backup>/manifest.json                written last: per file sha256 and size, per table version
                                          and row count, signed with the backup key (HMAC-SHA256)

Example::

    manifest = backup.backup_tables(lh, ["silver.orders"], "/backups/2026-11-24")
    report = backup.restore(lh, "/backups/2026-11-24", "/restore/wh", verify=True)
    print(report.summary())

A table's version is fixed when its backup starts: writers that commit meanwhile add new
log entries and files that the backup does not copy, so the copy is exactly that version.

Every path is untrusted: a path from a Delta or NCF log must stay inside its table
(no absolute path, ``..``, URL-encoded escape or symlink out), and a manifest is only
believed when its HMAC-SHA256 signature matches under the backup key (a secret, see
:data:`~neurolake_spark.secret_files.BACKUP_KEY`): anyone can recompute a plain checksum.
Restoring checks the signature, every table name, every path (inside the backup and inside
``--to``) and every file's checksum before it writes anything, creates files without ever
overwriting one, and checks each copy again; a missing file, a changed byte, a damaged or
forged manifest is a :class:`BackupError`, never a partial restore. ``verify`` also counts
the restored rows and compares a sample of rows (chosen by hashing the table's key, so
nothing is collected to the driver) with the source table at the backed-up version, when
the source still exists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ncf_datasource.table.paths import UnsafePathError, check_relative, inside
from neurolake_spark.concurrency import run_concurrently
from neurolake_spark.errors import NeuroLakeError, TableNameError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.secret_files import BACKUP_KEY
from neurolake_spark.tables import TableRef, validate_table_name
from neurolake_spark.testing_hooks import pause_at

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
"""2: signed with the backup key (``key_id``, ``hmac``); 1 had an unkeyed checksum and is refused."""
CATALOG_FILE = "catalog.db"
SAMPLE_ROWS = 1000
_CHUNK = 1 << 20
_DELTA_COMMIT = re.compile(r"^(\d{20})\.json$")
_DELTA_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.\d+\.\d+)?\.parquet$")
_DELTA_CRC = re.compile(r"^(\d{20})\.crc$")
_DELTA_V2_CHECKPOINT = re.compile(r"^\d{20}\.checkpoint\.[0-9a-f-]{36}\.(?:json|parquet)$")


class BackupError(NeuroLakeError):
    """A backup cannot be taken, or a backup is incomplete or corrupt."""


@dataclass(frozen=True)
class TableFiles:
    """The files that make up one committed version of a table, relative to its folder."""

    version: int
    log_files: list[str]
    data_files: list[str]


@dataclass
class RestoreReport:
    """What a restore copied and, with ``verify``, what it proved."""

    target: Path
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    catalog: bool = False

    def summary(self) -> str:
        lines = [f"restored into {self.target}"]
        for name, info in sorted(self.tables.items()):
            parts = [f"version {info['version']}", f"{info['files']} files checksummed"]
            if "rows" in info:
                parts.append(f"{info['rows']:,} rows counted")
            if "sample_rows" in info:
                parts.append(f"{info['sample_rows']:,} sampled rows equal to the source")
            elif info.get("sample_skipped"):
                parts.append(f"sample comparison skipped: {info['sample_skipped']}")
            lines.append(f"  {name:<22} " + ", ".join(parts))
        if self.catalog:
            lines.append("  catalog.db             checksummed")
        return "\n".join(lines)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ----------------------------------------------------------------- files of a version


def _within(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, proven to stay inside ``root`` (see :func:`ncf_datasource.table.paths.inside`)."""
    try:
        return inside(root, relative)
    except UnsafePathError as exc:
        raise BackupError(f"{what}: {exc}") from None


def _delta_relative(table_path: Path, path: str) -> str:
    """The file a Delta log action names, relative to the table; it must stay inside the table."""
    parsed = urlparse(path) if isinstance(path, str) else None
    if parsed is None or parsed.scheme:
        raise BackupError(
            f"{table_path}: the log names a file outside the table ({path!r}); cannot back it up"
        )
    relative = unquote(path)
    _within(table_path, relative, f"{table_path}: the log names a file outside the table")
    return relative


def delta_files(table_path: Path, version: int | None = None) -> TableFiles:
    """Log entries and live data files of a Delta table at ``version`` (default: latest).

    Replays the newest checkpoint at or before the version, then the JSON commits after it.
    """
    log_dir = table_path / "_delta_log"
    names = os.listdir(log_dir) if log_dir.is_dir() else []
    commits = sorted(int(m.group(1)) for n in names if (m := _DELTA_COMMIT.match(n)))
    if not commits:
        raise BackupError(f"{table_path} is not a Delta table (no commits in _delta_log)")
    target = commits[-1] if version is None else version
    if target not in commits:
        raise BackupError(
            f"{table_path}: version {target} is not in the log (versions {commits[0]}..{commits[-1]})"
        )
    checkpoints = [n for n in names if (m := _DELTA_CHECKPOINT.match(n)) and int(m.group(1)) <= target]
    if any(_DELTA_V2_CHECKPOINT.match(n) for n in names):
        raise BackupError(f"{table_path}: v2 checkpoints are not supported by backup")
    base = max((int(n[:20]) for n in checkpoints), default=-1)
    live: set[str] = set()
    for name in sorted(n for n in checkpoints if int(n[:20]) == base):
        import pyarrow.parquet as pq

        for add in pq.read_table(log_dir / name, columns=["add"]).column("add").to_pylist():
            if add:
                _check_no_deletion_vector(table_path, add)
                live.add(_delta_relative(table_path, add["path"]))
    for commit in (v for v in commits if base < v <= target):
        with open(log_dir / f"{commit:020d}.json", encoding="utf-8") as handle:
            for line in handle:
                action = json.loads(line) if line.strip() else {}
                if "add" in action:
                    _check_no_deletion_vector(table_path, action["add"])
                    live.add(_delta_relative(table_path, action["add"]["path"]))
                elif "remove" in action:
                    live.discard(_delta_relative(table_path, action["remove"]["path"]))
    log_files = [f"_delta_log/{v:020d}.json" for v in commits if v <= target]
    log_files += [f"_delta_log/{n}" for n in sorted(checkpoints)]
    log_files += [
        f"_delta_log/{n}" for n in sorted(names) if (m := _DELTA_CRC.match(n)) and int(m.group(1)) <= target
    ]
    return TableFiles(target, log_files, sorted(live))


def _check_no_deletion_vector(table_path: Path, add: dict) -> None:
    if add.get("deletionVector"):
        raise BackupError(f"{table_path}: tables with deletion vectors are not supported by backup")


def ncf_files(table_path: Path, version: int | None = None) -> TableFiles:
    """Commit log entries (and checkpoints) and live data files of an NCF table at ``version``."""
    try:
        from ncf_datasource.table import NCFTable
        from ncf_datasource.table.log import LOG_DIR, checkpoint_name, commit_name
    except ImportError:
        raise BackupError(
            f"{table_path}: NCF tables need ncf_datasource.table, which is not installed"
        ) from None
    snapshot = NCFTable(table_path).snapshot(version)
    log_dir = table_path / LOG_DIR
    log_files = [
        f"{LOG_DIR}/{commit_name(v)}"
        for v in range(snapshot.version + 1)
        if (log_dir / commit_name(v)).exists()
    ]
    log_files += [
        f"{LOG_DIR}/{checkpoint_name(v)}"
        for v in range(snapshot.version + 1)
        if (log_dir / checkpoint_name(v)).exists()
    ]
    return TableFiles(snapshot.version, log_files, sorted(snapshot.files))


FILES_OF_VERSION: dict[str, Callable[[Path, int | None], TableFiles]] = {
    "delta": delta_files,
    "ncf": ncf_files,
}


def files_of_version(ref: TableRef, version: int | None = None) -> TableFiles:
    """The files of one version of ``ref``, whatever its format."""
    return FILES_OF_VERSION[ref.format](ref.path, version)


def count_rows(lh: Lakehouse, fmt: str, path: Path, version: int | None = None) -> int:
    return _read(lh, fmt, path, version).count()


def _read(lh: Lakehouse, fmt: str, path: Path, version: int | None = None) -> DataFrame:
    reader = lh.spark.read.format(fmt)
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    return reader.load(str(path))


# ----------------------------------------------------------------- backup


def _copy_file(source: Path, target: Path) -> dict[str, Any]:
    """Copy ``source`` to the new file ``target`` (never overwriting one); return its sha256 and size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def backup_table(lh: Lakehouse, name: str, target: Path, version: int | None = None) -> dict[str, Any]:
    """Copy one version of ``name`` into ``target``; return its manifest entry."""
    ref = lh.resolve(name)
    files = files_of_version(ref, version)
    entries: dict[str, Any] = {}
    what = f"{name}: the log of version {files.version} names a file outside the table"
    pairs = [
        (relative, _within(ref.path, relative, what), _within(target, relative, what))
        for relative in files.log_files + files.data_files
    ]
    for relative, source, copy in pairs:
        try:
            entries[relative] = _copy_file(source, copy)
            pause_at(f"backup.copy:{name}")
        except FileNotFoundError:
            raise BackupError(
                f"{name}: file {relative} of version {files.version} disappeared during the backup "
                "(did VACUUM run with a short retention?)"
            ) from None
    return {
        "format": ref.format,
        "source": str(ref.path),
        "version": files.version,
        "rows": count_rows(lh, ref.format, ref.path, files.version),
        "key": _table_key(lh, name),
        "files": entries,
    }


def _table_key(lh: Lakehouse, name: str) -> list[str]:
    for source in lh.settings.pipeline_definition().sources.values():
        if name in (source.bronze, source.silver):
            return list(source.key)
    return []


def sqlite_path(catalog_url: str) -> Path | None:
    """The file of a ``sqlite:///`` catalog URL (None for a server database)."""
    prefix = "sqlite:///"
    return Path(catalog_url[len(prefix) :]) if catalog_url.startswith(prefix) else None


def backup_catalog(catalog_url: str, target: Path) -> dict[str, Any] | None:
    """A consistent copy of a SQLite catalog via the sqlite3 backup API (None if absent).

    A server catalog (PostgreSQL) is backed up with its own tools (``pg_dump``).
    """
    source = sqlite_path(catalog_url)
    if source is None:
        return {"skipped": "server catalog: back it up with pg_dump"}
    if not source.exists():
        return None
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    return {"file": target.name, "sha256": sha256_of(target), "size": target.stat().st_size}


def backup_key_id(key: str) -> str:
    """A public fingerprint of the backup key (an HMAC of a constant), recorded in each manifest."""
    return hmac.new(key.encode(), b"neurolake-backup-key-id", hashlib.sha256).hexdigest()[:16]


def manifest_signature(manifest: dict[str, Any], key: str) -> str:
    """HMAC-SHA256 under the backup key of the manifest's canonical JSON (without ``hmac`` itself)."""
    body = json.dumps(
        {k: v for k, v in manifest.items() if k != "hmac"}, sort_keys=True, separators=(",", ":")
    )
    return hmac.new(key.encode(), b"neurolake-backup-manifest\n" + body.encode(), hashlib.sha256).hexdigest()


def backup_tables(
    lh: Lakehouse,
    names: list[str],
    target: str | os.PathLike,
    version: int | None = None,
    catalog: bool = True,
) -> dict[str, Any]:
    """Back up ``names`` (and the catalog) into the new folder ``target``; return the manifest.

    ``version`` pins the version of a single table; otherwise each table's latest.
    """
    target = Path(target).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"backup folder {target} is not empty; choose a new folder")
    if version is not None and len(names) != 1:
        raise BackupError("--version needs exactly one table")
    key = BACKUP_KEY.read(lh.settings)
    refs = [lh.resolve(name) for name in names]
    missing = [ref.name for ref in refs if not _table_exists(ref)]
    if missing and len(names) == 1:
        raise BackupError(f"table {missing[0]} does not exist yet; nothing to back up")
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "warehouse": str(lh.settings.warehouse),
        "key_id": backup_key_id(key),
        "tables": {},
        "catalog": None,
    }
    present = [ref.name for ref in refs if ref.name not in missing]
    copies = run_concurrently(
        lh.spark,
        [partial(backup_table, lh, name, _table_dir(target, name), version) for name in present],
        "backup",
    )
    manifest["tables"].update(zip(present, copies))
    if catalog:
        manifest["catalog"] = backup_catalog(lh.settings.catalog_url, target / CATALOG_FILE)
    manifest["hmac"] = manifest_signature(manifest, key)
    staging = target / (MANIFEST + ".tmp")
    staging.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(staging, target / MANIFEST)
    return manifest


def _table_exists(ref: TableRef) -> bool:
    log = "_delta_log" if ref.format == "delta" else "_ncf_log"
    return (ref.path / log).is_dir()


def _table_dir(root: Path, name: str) -> Path:
    layer, table = name.split(".", 1)
    return root / "tables" / layer / table


# ----------------------------------------------------------------- restore


def read_manifest(backup_dir: str | os.PathLike, key: str) -> dict[str, Any]:
    """The manifest of a backup, once its signature under ``key`` and its shape are checked.

    The signature proves that someone holding the backup key wrote it; the shape check
    (table names, relative file paths, checksums and sizes) keeps a manifest from naming
    anything outside the backup or the restore target.
    """
    path = Path(backup_dir).expanduser() / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{path.parent} is not a complete backup: {MANIFEST} is missing") from None
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{path} is damaged (not valid JSON; truncated?)") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"{path} is damaged (not a JSON object)")
    version = manifest.get("format_version")
    if version == 1:
        raise BackupError(
            f"{path}: backup format 1 is not signed (its checksum is unkeyed, anyone can recompute it), "
            "so it cannot be trusted; take a new backup"
        )
    if version != FORMAT_VERSION:
        raise BackupError(f"{path}: unsupported backup format version {version!r}")
    signature = manifest.get("hmac")
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature, manifest_signature(manifest, key)
    ):
        if manifest.get("key_id") != backup_key_id(key):
            raise BackupError(
                f"{path} is damaged or was signed with another backup key (key id "
                f"{manifest.get('key_id')!r}, this environment's key id {backup_key_id(key)!r}): "
                "restore with the key that made the backup"
            )
        raise BackupError(
            f"{path} is damaged or was tampered with (its signature does not match its content)"
        )
    _check_shape(manifest, path)
    return manifest


def _check_shape(manifest: dict[str, Any], path: Path) -> None:
    """Every table name, file path, checksum and size of a manifest is well formed."""
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        raise BackupError(f"{path}: 'tables' is not a mapping")
    for name, entry in tables.items():
        try:
            validate_table_name(name)
        except TableNameError as exc:
            raise BackupError(f"{path}: {exc}") from None
        if not isinstance(entry, dict) or entry.get("format") not in FILES_OF_VERSION:
            raise BackupError(f"{path}: table {name} has no known format")
        files = entry.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (entry.get("version"), entry.get("rows"))
        ):
            raise BackupError(f"{path}: table {name} lacks its files, version or row count")
        for relative, expected in files.items():
            _check_relative(relative, path, f"table {name}")
            if not (
                isinstance(expected, dict)
                and isinstance(expected.get("sha256"), str)
                and re.fullmatch(r"[0-9a-f]{64}", expected["sha256"])
                and isinstance(expected.get("size"), int)
                and expected["size"] >= 0
            ):
                raise BackupError(f"{path}: table {name}, file {relative!r} has no valid sha256 and size")
    catalog = manifest.get("catalog")
    if catalog is not None and not isinstance(catalog, dict):
        raise BackupError(f"{path}: 'catalog' is not a mapping")
    if catalog and "file" in catalog:
        _check_relative(catalog["file"], path, "the catalog")


def _check_relative(relative: Any, path: Path, what: str) -> None:
    try:
        check_relative(relative)
    except UnsafePathError as exc:
        raise BackupError(f"{path}: {what}: {exc}") from None


def _check_file(path: Path, expected: dict[str, Any], what: str) -> None:
    if not path.is_file():
        raise BackupError(f"{what}: file {path} is missing")
    if path.stat().st_size != expected["size"] or sha256_of(path) != expected["sha256"]:
        raise BackupError(f"{what}: file {path} does not match its checksum (corrupt)")


def verify_backup(backup_dir: str | os.PathLike, key: str, tables: list[str] | None = None) -> dict[str, Any]:
    """Check the signed manifest and every file of the backup (or of ``tables``); return the manifest.

    ``key`` is the backup key (``BACKUP_KEY.read(settings)``). Each file must lie inside
    the backup (no symlink out) and match its checksum.
    """
    root = Path(backup_dir).expanduser().resolve()
    manifest = read_manifest(root, key)
    for name in tables or manifest["tables"]:
        entry = _manifest_table(manifest, name, root)
        for relative, expected in entry["files"].items():
            _check_file(_backup_file(root, name, relative), expected, f"backup of {name}")
    catalog = manifest.get("catalog") or {}
    if not tables and catalog.get("file"):
        _check_file(_within(root, catalog["file"], "backup of the catalog"), catalog, "backup of the catalog")
    return manifest


def _backup_file(root: Path, name: str, relative: str) -> Path:
    """A file of table ``name`` in the backup ``root``; it must lie inside the backup, symlinks resolved."""
    layer, short = name.split(".", 1)
    return _within(root, f"tables/{layer}/{short}/{relative}", f"backup of {name}")


def _manifest_table(manifest: dict[str, Any], name: str, root: Path) -> dict[str, Any]:
    if name not in manifest["tables"]:
        known = ", ".join(sorted(manifest["tables"])) or "none"
        raise BackupError(f"backup {root} has no table {name} (tables: {known})")
    return manifest["tables"][name]


def restore(
    lh: Lakehouse,
    backup_dir: str | os.PathLike,
    target: str | os.PathLike,
    tables: list[str] | None = None,
    verify: bool = False,
) -> RestoreReport:
    """Restore a backup (or some of its tables) into the warehouse folder ``target``.

    Tables land in ``<target>/<layer>/<table>``, the catalog in ``<target>/catalog.db``
    (only when restoring everything). Nothing is written before the signature, every
    path and every checksum have been checked; existing files are never overwritten.
    """
    root = Path(backup_dir).expanduser().resolve()
    target = Path(target).expanduser().resolve()
    manifest = verify_backup(root, BACKUP_KEY.read(lh.settings), tables)
    names = tables or sorted(manifest["tables"])
    copies: list[tuple[str, Path, Path, dict[str, Any]]] = []
    destinations: dict[str, Path] = {}
    for name in names:
        layer, short = name.split(".", 1)
        destination = _within(target, f"{layer}/{short}", f"restore of {name}")
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise BackupError(f"restore of {name}: {destination} is not empty; choose a new --to folder")
        destinations[name] = destination
        what = f"restore of {name}"
        for relative, expected in manifest["tables"][name]["files"].items():
            copy = _within(target, f"{layer}/{short}/{relative}", what)
            copies.append((name, _backup_file(root, name, relative), copy, expected))
    catalog = manifest.get("catalog") or {}
    if not tables and catalog.get("file"):
        catalog_copy = _within(target, CATALOG_FILE, "restore of the catalog")
        if catalog_copy.exists():
            raise BackupError(f"restore of the catalog: {catalog_copy} exists; choose a new --to folder")
        copies.append(
            ("the catalog", _within(root, catalog["file"], "backup of the catalog"), catalog_copy, catalog)
        )
    for name, source, copy, expected in copies:
        try:
            copied = _copy_file(source, copy)
        except OSError as exc:
            raise BackupError(f"restore of {name}: cannot write {copy}: {exc.strerror}") from None
        if copied != {"sha256": expected["sha256"], "size": expected["size"]}:
            raise BackupError(f"restore of {name}: the copy of {source.name} does not match its checksum")
    report = RestoreReport(target, catalog=bool(not tables and catalog.get("file")))
    for name in names:
        entry = manifest["tables"][name]
        report.tables[name] = {
            "version": entry["version"],
            "files": len(entry["files"]),
            "path": str(destinations[name]),
        }
        if verify:
            report.tables[name].update(verify_table(lh, name, entry, destinations[name]))
    return report


def verify_table(lh: Lakehouse, name: str, entry: dict[str, Any], restored: Path) -> dict[str, Any]:
    """Prove a restored table equal to the backup: its row count, and a sample of rows
    compared with the source at the backed-up version (both ways, with ``exceptAll``)."""
    fmt, version = entry["format"], int(entry["version"])
    restored_df = _read(lh, fmt, restored)
    rows = restored_df.count()
    if rows != entry["rows"]:
        raise BackupError(f"restore of {name}: {rows} rows restored, the backup recorded {entry['rows']}")
    result: dict[str, Any] = {"rows": rows}
    source = Path(entry["source"])
    try:
        source_df = _read(lh, fmt, source, version)
    except Exception as exc:
        result["sample_skipped"] = (
            f"source {source} at version {version} is not readable ({type(exc).__name__})"
        )
        return result
    keys = entry.get("key") or restored_df.columns
    modulus = max(1, rows // SAMPLE_ROWS)
    in_sample = (F.abs(F.xxhash64(*[F.col(f"`{k}`") for k in keys])) % modulus) == 0
    ours, theirs = restored_df.where(in_sample), source_df.where(in_sample)
    sampled = ours.count()
    if ours.exceptAll(theirs).limit(1).count() or theirs.exceptAll(ours).limit(1).count():
        raise BackupError(f"restore of {name}: sampled rows differ from {source} at version {version}")
    result["sample_rows"] = sampled
    return result
