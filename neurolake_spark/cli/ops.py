"""Operator commands: backups, table history/restore/vacuum/optimize, erasure, bulk fixes.

    neurolake backup silver.orders --to /backups/b1          # or --all
    neurolake restore /backups/b1 [silver.orders] --to /restore/wh --verify
    neurolake table history silver.orders
    neurolake table restore silver.orders --version 3        # or --timestamp 2026-11-24T02:00:00
    neurolake table vacuum silver.orders --retention-hours 0 --force
    neurolake table optimize --all --date 2026-11-24
    neurolake erase --table silver.customers --key customer_id --values 1,2,3 --vacuum
    neurolake fixes --date 2026-11-24                         # apply <raw>/fixes/date=D/*.json

Every command that changes a table runs inside a :class:`~neurolake_spark.runs.JobRun`,
so its metrics and lineage record which versions it wrote.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurolake_spark.cli.common import add_environment_options, open_lakehouse
from neurolake_spark.errors import PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import run_lock
from neurolake_spark.runs import JobRun

if TYPE_CHECKING:
    from neurolake_spark.bulk_guard import RowImpact
    from neurolake_spark.conditions import Node

INTEGRAL_TYPES = {"tinyint", "smallint", "int", "bigint"}
FIX_OPERATIONS = ("update", "delete", "erase")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``backup``, ``restore``, ``table``, ``erase`` and ``fixes`` to the ``neurolake`` parser."""
    _add_backup(subparsers)
    _add_restore(subparsers)
    _add_table(subparsers)
    _add_erase(subparsers)
    _add_fixes(subparsers)


def _command(subparsers, name: str, handler, help_text: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    add_environment_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def _add_tables_choice(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("tables", nargs="*", metavar="TABLE", help=f"tables to {what}, e.g. silver.orders")
    parser.add_argument("--all", action="store_true", help="every table of the pipeline that exists")


def _chosen_tables(lh: Lakehouse, args: argparse.Namespace) -> list[str]:
    if bool(args.tables) == bool(args.all):
        raise PipelineError("name one or more tables, or pass --all")
    return lh.tables.names() if args.all else [lh.resolve(name).name for name in args.tables]


def _existing(lh: Lakehouse, names: list[str]) -> list[str]:
    from neurolake_spark import bulk

    return [n for n in names if bulk.exists(lh.spark, lh.resolve(n))]


# ----------------------------------------------------------------- backup / restore


def _add_backup(subparsers) -> None:
    p = _command(
        subparsers, "backup", _backup, "copy a consistent version of tables and the catalog, with a manifest"
    )
    _add_tables_choice(p, "back up")
    p.add_argument("--to", required=True, metavar="DIR", help="a new, empty backup folder")
    p.add_argument("--version", type=int, help="back up this version (one table only; default: the latest)")
    p.add_argument("--date", help="the run date, recorded with the run (for scheduled backups)")
    p.add_argument("--no-catalog", action="store_true", help="leave the catalog database out")


def _backup(args: argparse.Namespace) -> int:
    from neurolake_spark import backup

    lh = open_lakehouse(args)
    names = _chosen_tables(lh, args)
    run = lh.run("backup", run_date=args.date)
    # Registered like every command that reads table files, and under the lock of its folder: no
    # forced vacuum, erasure or restore meanwhile, and a backup killed mid-copy is reported aborted
    # by the next command that takes these locks.
    tables = [lh.resolve(name).path for name in names] + [Path(args.to)]
    with run_lock(lh.settings, f"a backup of {_listed(names)}", run, tables=tables), run:
        manifest = backup.backup_tables(lh, names, args.to, version=args.version, catalog=not args.no_catalog)
        for name, entry in manifest["tables"].items():
            run.add_input(
                name,
                format=entry["format"],
                path=entry["source"],
                version=entry["version"],
                rows=entry["rows"],
                files=len(entry["files"]),
            )
    print(f"backup in {Path(args.to).expanduser().resolve()} ({len(manifest['tables'])} tables)")
    for name, entry in sorted(manifest["tables"].items()):
        print(
            f"  {name:<22} version {entry['version']:>4}  {entry['rows']:>10,} rows  "
            f"{len(entry['files']):>4} files"
        )
    catalog = manifest.get("catalog") or {}
    print(
        "  catalog.db copied" if catalog.get("file") else f"  catalog: {catalog.get('skipped', 'none yet')}"
    )
    return 0


def _add_restore(subparsers) -> None:
    p = _command(
        subparsers, "restore", _restore, "restore a backup into a new warehouse folder, checking every file"
    )
    p.add_argument("backup_dir", metavar="BACKUP_DIR", help="a folder written by 'neurolake backup'")
    p.add_argument(
        "tables", nargs="*", metavar="TABLE", help="restore only these tables (default: all and the catalog)"
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="DIR",
        help="the warehouse folder to restore into (tables must not exist)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="also count the rows and compare a sample of rows with the source version",
    )


def _restore(args: argparse.Namespace) -> int:
    from neurolake_spark import backup

    lh = open_lakehouse(args)
    report = backup.restore(lh, args.backup_dir, args.to, tables=args.tables or None, verify=args.verify)
    print(report.summary())
    return 0


# ----------------------------------------------------------------- table ...


def _add_table(subparsers) -> None:
    parser = subparsers.add_parser(
        "table",
        help="history, restore, vacuum and optimize of Delta tables",
        description="Operate on one Delta table (or all of them).",
    )
    commands = parser.add_subparsers(dest="table_command", metavar="SUBCOMMAND", required=True)

    p = _command(commands, "history", _history, "list the versions of a table with their operations and runs")
    p.add_argument("table", help="e.g. silver.orders")
    p.add_argument("--limit", type=int, default=20, help="newest versions to show (default 20)")

    p = _command(
        commands, "restore", _table_restore, "roll a table back to an earlier version (a new commit)"
    )
    p.add_argument("table", help="e.g. gold.daily_revenue")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=int, help="the version to go back to")
    target.add_argument("--timestamp", help="the time to go back to, e.g. 2026-11-24T02:00:00")

    p = _command(commands, "vacuum", _vacuum, "delete files that no version within the retention needs")
    _add_tables_choice(p, "vacuum")
    p.add_argument("--retention-hours", type=int, help="default: maintenance.vacuum_retention_hours")
    p.add_argument(
        "--force",
        action="store_true",
        help="allow a retention below 168 hours (breaks older time travel; runs only while no other "
        "command holds a lock in the warehouse)",
    )
    p.add_argument("--date", help="the run date, recorded with the run (for the nightly DAG)")

    p = _command(
        commands,
        "optimize",
        _optimize,
        "compact small files (only the --date partition of partitioned tables)",
    )
    _add_tables_choice(p, "compact")
    p.add_argument("--date", help="compact only this batch date's partition of partitioned tables")
    p.add_argument("--zorder-by", nargs="+", metavar="COLUMN", help="cluster the files by these columns")


def _delta_only(lh: Lakehouse, name: str) -> str:
    ref = lh.resolve(name)
    if ref.format != "delta":
        raise PipelineError(f"table {name} is {ref.format}; this command works on Delta tables")
    return name


def _history(args: argparse.Namespace) -> int:
    from delta.tables import DeltaTable

    lh = open_lakehouse(args)
    ref = lh.resolve(_delta_only(lh, args.table))
    if not DeltaTable.isDeltaTable(lh.spark, ref.uri):
        raise PipelineError(f"table {args.table} does not exist yet at {ref.path}")
    rows = (
        DeltaTable.forPath(lh.spark, ref.uri)
        .history(max(1, args.limit))
        .select("version", "timestamp", "operation", "operationMetrics", "userMetadata")
        .collect()
    )
    print(f"{'version':>7}  {'timestamp (UTC)':<19}  {'operation':<18} {'run id':<36}  rows written")
    for row in rows:
        run_id = json.loads(row["userMetadata"]).get("neurolake_run_id", "") if row["userMetadata"] else ""
        metrics = row["operationMetrics"] or {}
        written = metrics.get("numOutputRows") or metrics.get("numTargetRowsInserted") or ""
        print(
            f"{row['version']:>7}  {row['timestamp']:%Y-%m-%d %H:%M:%S}  {row['operation']:<18} "
            f"{run_id:<36}  {written}"
        )
    return 0


def _table_restore(args: argparse.Namespace) -> int:
    from neurolake_spark import maintenance

    lh = open_lakehouse(args)
    ref = lh.resolve(_delta_only(lh, args.table))
    run = lh.run("table_restore")
    # Exclusive: no writer may commit to the table while it is rolled back.
    with (
        run_lock(lh.settings, f"a restore of {args.table}", run, tables=[ref.path], exclusive=True),
        run,
    ):
        version = maintenance.restore(
            lh, args.table, version=args.version, timestamp=args.timestamp, run_id=run.run_id
        )
        run.add_output(args.table, format="delta", path=ref.uri, version=version.version)
    source = f"version {args.version}" if args.version is not None else f"timestamp {args.timestamp}"
    print(f"restored {args.table} to {source}: new version {version.version}")
    return 0


def _vacuum(args: argparse.Namespace) -> int:
    from neurolake_spark import maintenance

    lh = open_lakehouse(args)
    chosen = _chosen_tables(lh, args)
    run = lh.run("vacuum", run_date=args.date)
    what = f"{'a forced vacuum' if args.force else 'a vacuum'} of {_listed(chosen)}"
    tables = [lh.resolve(name).path for name in chosen]
    # A forced vacuum deletes files younger than the safe retention, such as a running writer's
    # uncommitted ones: it runs only while no other command holds a lock (see docs/security.md).
    with run_lock(lh.settings, what, run, tables=tables, exclusive=args.force), run:
        for name in [_delta_only(lh, n) for n in _existing(lh, chosen)]:
            version = maintenance.vacuum(
                lh, name, retention_hours=args.retention_hours, force=args.force, run_id=run.run_id
            )
            run.add_output(name, format="delta", path=lh.resolve(name).uri, version=version.version)
            print(f"vacuumed {name} (version {version.version})")
    return 0


def _listed(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} tables"


def _optimize(args: argparse.Namespace) -> int:
    from neurolake_spark import maintenance
    from neurolake_spark.parsing import parse_date

    lh = open_lakehouse(args)
    names = [_delta_only(lh, n) for n in _existing(lh, _chosen_tables(lh, args))]
    batch_date = parse_date(args.date).isoformat() if args.date else None
    run = lh.run("compact", run_date=batch_date)
    # OPTIMIZE writes files before it commits them: registered, so no forced vacuum runs meanwhile.
    tables = [lh.resolve(name).path for name in names]
    with run_lock(lh.settings, f"a compaction of {_listed(names)}", run, tables=tables), run:
        versions = maintenance.optimize_tables(lh, names, batch_date, args.zorder_by, run.run_id)
        for name, version in zip(names, versions):
            run.add_output(name, format="delta", path=lh.resolve(name).uri, version=version.version)
            where = maintenance.night_filter(lh, name, batch_date)
            print(f"optimized {name}{' where ' + where if where else ''} (version {version.version})")
    return 0


# ----------------------------------------------------------------- erasure and fixes


def _add_erase(subparsers) -> None:
    p = _command(
        subparsers,
        "erase",
        _erase,
        "delete a data subject's rows from every pipeline table that has the key column (GDPR)",
    )
    p.add_argument(
        "--table", required=True, help="the subject's table, e.g. silver.customers (must have the key)"
    )
    p.add_argument("--key", required=True, help="the key column, e.g. customer_id")
    p.add_argument("--values", required=True, help="comma-separated key values, e.g. 1,2,3")
    p.add_argument(
        "--vacuum",
        action="store_true",
        help="then vacuum those tables with retention 0, so old versions no longer hold the rows",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print how many rows of which files would be erased; change nothing",
    )


def key_values(text: str, column_type: str) -> list[Any]:
    """Parse ``"1,2,3"`` into values of the key column's Spark type."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise PipelineError("--values: give at least one key value")
    try:
        if column_type in INTEGRAL_TYPES:
            return [int(v) for v in values]
        if column_type.startswith("decimal"):
            return [Decimal(v) for v in values]
    except ArithmeticError as exc:
        raise PipelineError(f"--values: not a {column_type}: {exc}") from None
    except ValueError:
        raise PipelineError(f"--values: every value must be a {column_type}") from None
    return values


def tables_with_column(lh: Lakehouse, column: str) -> dict[str, str]:
    """``{table: column type}`` of every existing table of the pipeline (Delta or NCF) that has
    ``column``."""
    found = {}
    for name in _existing(lh, lh.tables.names()):
        ref = lh.resolve(name)
        types = {
            f.name: f.dataType.simpleString()
            for f in lh.spark.read.format(ref.format).load(ref.uri).schema.fields
        }
        if column in types:
            found[name] = types[column]
    return found


def _erasure_targets(lh: Lakehouse, anchor: str, key: str, values_text: str) -> tuple[list[str], list[Any]]:
    """The tables with column ``key`` and the key values, typed as ``anchor``'s column."""
    lh.resolve(anchor)
    tables = tables_with_column(lh, key)
    if anchor not in tables:
        raise PipelineError(f"table {anchor} does not exist or has no column '{key}'")
    return sorted(tables), key_values(values_text, tables[anchor])


def erasure_impact(lh: Lakehouse, anchor: str, key: str, values_text: str) -> list[RowImpact]:
    """What :func:`erase_everywhere` would delete: rows per data file of each table."""
    from neurolake_spark.bulk_guard import measure
    from neurolake_spark.conditions import Col, InList, literal

    names, values = _erasure_targets(lh, anchor, key, values_text)
    condition = InList(Col(key), tuple(literal(v, "--values") for v in values))
    return [measure(lh.spark, lh.resolve(n).format, lh.resolve(n).uri, n, condition) for n in names]


def _erase_quarantined(lh: Lakehouse, key: str, values: list[Any], run: JobRun):
    """Delete the malformed raw records whose ``key`` field is in ``values`` from the ingest
    quarantine (see :func:`~neurolake_spark.erasure.quarantined_with_key`); its new version, or
    None when there is no such table or no source with the column."""
    from neurolake_spark import bulk
    from neurolake_spark.erasure import quarantined_with_key
    from neurolake_spark.ingest import QUARANTINE_TABLE

    condition = quarantined_with_key(lh.settings.pipeline_definition(), key, values)
    ref = lh.resolve(QUARANTINE_TABLE)
    if condition is None or not bulk.exists(lh.spark, ref):
        return None
    return bulk.delete(lh.spark, ref, condition, run_id=run.run_id)


def _vacuum_erased(lh: Lakehouse, name: str, run: JobRun, erased):
    """Vacuum ``name`` with retention 0 (Delta or NCF), then drop string statistics from its log,
    so neither an old file nor a log entry keeps an erased value. The table's version to record:
    the vacuum's commit (Delta), else ``erased`` (an NCF vacuum commits nothing)."""
    from ncf_datasource.table import NCFTable
    from ncf_datasource.table.maintenance import vacuum as ncf_vacuum
    from neurolake_spark import maintenance
    from neurolake_spark.erasure import scrub_statistics

    ref = lh.resolve(name)
    if ref.format == "ncf":
        ncf_vacuum(NCFTable.open(ref.path), 0, force=True)
        version = erased
    else:
        version = maintenance.vacuum(lh, name, retention_hours=0, force=True, run_id=run.run_id)
    scrub_statistics(ref)
    return version


def erase_everywhere(
    lh: Lakehouse,
    anchor: str,
    key: str,
    values_text: str,
    run: JobRun,
    vacuum: bool = False,
    origin: str | None = "neurolake erase",
) -> dict[str, int]:
    """Erase the rows whose ``key`` is in ``values_text`` from every table with that column (Delta
    and NCF) and the quarantined raw records with that key, and keep the request in the erasure
    register (unless ``origin`` is None: a request re-applied from the register).

    With ``vacuum``, old files are deleted and string statistics dropped from the tables' logs.
    Returns ``{table: rows deleted}``; each table's new version is recorded on ``run``.
    """
    from neurolake_spark import bulk
    from neurolake_spark.erasure import ErasureRegister
    from neurolake_spark.ingest import QUARANTINE_TABLE

    names, values = _erasure_targets(lh, anchor, key, values_text)
    if origin is not None:
        ErasureRegister(lh.settings.warehouse).record(anchor, key, values, origin, run.run_id)
    deleted = {}
    for name in names:
        ref = lh.resolve(name)
        version = bulk.erase_keys(lh.spark, ref, key, values, run_id=run.run_id)
        deleted[name] = version.metric("numTargetRowsDeleted", "numDeletedRows")
        if vacuum:
            version = _vacuum_erased(lh, name, run, version)
        run.add_output(name, format=ref.format, path=ref.uri, version=version.version, rows=deleted[name])
    quarantined = _erase_quarantined(lh, key, values, run)
    if quarantined is not None:
        ref = lh.resolve(QUARANTINE_TABLE)
        deleted[QUARANTINE_TABLE] = quarantined.metric("numDeletedRows")
        if vacuum:
            quarantined = _vacuum_erased(lh, QUARANTINE_TABLE, run, quarantined)
        run.add_output(
            QUARANTINE_TABLE,
            format=ref.format,
            path=ref.uri,
            version=quarantined.version,
            rows=deleted[QUARANTINE_TABLE],
        )
    run.facts["erasure"] = {"key": key, "values": len(values), "vacuumed": vacuum}
    return deleted


def reapply_erasures(lh: Lakehouse, run: JobRun) -> list[str]:
    """Erase again every request of the erasure register (rows a source re-sent since), without
    vacuuming; one line per request."""
    from neurolake_spark.erasure import ErasureRegister

    applied = []
    for request in ErasureRegister(lh.settings.warehouse).requests():
        values = ",".join(str(v) for v in request.values)
        erase_everywhere(lh, request.anchor, request.key, values, run, origin=None)
        applied.append(
            f"erasure register: erase {request.key} ({len(request.values)} values, {request.origin})"
        )
    return applied


def _erase(args: argparse.Namespace) -> int:
    lh = open_lakehouse(args)
    if args.dry_run:
        for impact in erasure_impact(lh, args.table, args.key, args.values):
            print(impact.describe("erase"))
        return 0
    run = lh.run("erase")
    tables = [lh.resolve(name).path for name in lh.tables.names()]
    # Exclusive: an erasure rewrites tables a night writes, and --vacuum removes unreferenced files.
    with (
        run_lock(lh.settings, f"an erasure from {args.table}", run, tables=tables, exclusive=True),
        run,
    ):
        deleted = erase_everywhere(lh, args.table, args.key, args.values, run, vacuum=args.vacuum)
    for name, rows in deleted.items():
        print(f"erased {rows:>6} rows from {name}")
    note = "old versions vacuumed" if args.vacuum else "old versions still hold the rows until vacuum"
    print(f"erasure of {args.key} ({len(args.values.split(','))} values) done in run {run.run_id}; {note}")
    return 0


def _add_fixes(subparsers) -> None:
    p = _command(subparsers, "fixes", _fixes, "apply the day's bulk fixes: <raw>/fixes/date=D/*.json")
    p.add_argument("--date", required=True, help="batch date, YYYY-MM-DD")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the fixes and print what each would change; change nothing",
    )


def fixes_folder(lh: Lakehouse, batch_date: str) -> Path:
    return lh.settings.raw_dir / "fixes" / f"date={batch_date}"


@dataclass(frozen=True)
class Fix:
    """One bulk fix file, parsed: conditions and assignments are trees of the restricted
    language (:mod:`neurolake_spark.conditions`), never SQL text."""

    file: str
    op: str
    table: str
    where: Node | None = None
    assignments: dict[str, Node] = field(default_factory=dict)
    key: str = ""
    values: tuple = ()
    all_rows: bool = False


FIX_KEYS = {"op", "table", "where", "set", "key", "values", "all_rows", "comment"}


def load_fix(path: Path) -> Fix:
    """One fix file: ``{"op": "update"|"delete"|"erase", "table": ..., ...}``, checked and parsed.

    ``where`` is a condition (text, or the structured form of
    :func:`~neurolake_spark.conditions.condition_from_json`); ``set`` maps columns to
    expressions; ``all_rows: true`` allows a condition that matches every row."""
    from neurolake_spark.conditions import condition_from_json, parse_condition, parse_expression

    try:
        fix = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PipelineError(f"fix {path.name}: not valid JSON ({exc})") from None
    required = {"update": ("where", "set"), "delete": ("where",), "erase": ("key", "values")}
    if not isinstance(fix, dict) or fix.get("op") not in required:
        raise PipelineError(f"fix {path.name}: 'op' must be one of {', '.join(FIX_OPERATIONS)}")
    missing = [k for k in ("table", *required[fix["op"]]) if k not in fix]
    if missing:
        raise PipelineError(f"fix {path.name}: missing {', '.join(missing)}")
    unknown = sorted(set(fix) - FIX_KEYS)
    if unknown:
        raise PipelineError(f"fix {path.name}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(fix["table"], str) or not isinstance(fix.get("all_rows", False), bool):
        raise PipelineError(f"fix {path.name}: 'table' must be a string and 'all_rows' true or false")
    where = None
    if "where" in fix:
        what = f"fix {path.name}: where"
        spec = fix["where"]
        where = parse_condition(spec, what) if isinstance(spec, str) else condition_from_json(spec, what)
    assignments = {}
    if fix["op"] == "update":
        if not isinstance(fix["set"], dict) or not fix["set"]:
            raise PipelineError(f"fix {path.name}: 'set' must map columns to expressions")
        for column, expression in fix["set"].items():
            assignments[column] = parse_expression(expression, f"fix {path.name}: set {column}")
    if fix["op"] == "erase" and (
        not isinstance(fix["key"], str) or not isinstance(fix["values"], list) or not fix["values"]
    ):
        raise PipelineError(f"fix {path.name}: 'key' must be a column name and 'values' a non-empty list")
    return Fix(
        file=path.name,
        op=fix["op"],
        table=fix["table"],
        where=where,
        assignments=assignments,
        key=fix.get("key", ""),
        values=tuple(fix.get("values", ())),
        all_rows=fix.get("all_rows", False),
    )


def _check_fixable(lh: Lakehouse, fix: Fix) -> None:
    definition = lh.settings.pipeline_definition()
    lh.resolve(fix.table)
    if fix.table in definition.fixable_tables():
        return
    source = next((n for n, s in definition.sources.items() if fix.table in (s.bronze, s.silver)), None)
    how = (
        f"add it to sources.{source}.fixable in {lh.settings.pipeline}"
        if source
        else "only a source's bronze or silver table can be declared fixable"
    )
    raise PipelineError(f"fix {fix.file}: table {fix.table} is not fixable ({how})")


def load_fixes(lh: Lakehouse, batch_date: str) -> list[Fix]:
    """Every fix file of ``batch_date``, in name order, parsed and checked (each table fixable)
    before any is applied."""
    folder = fixes_folder(lh, batch_date)
    fixes = [load_fix(path) for path in (sorted(folder.glob("*.json")) if folder.is_dir() else [])]
    for fix in fixes:
        _check_fixable(lh, fix)
    return fixes


def _bound_fix(lh: Lakehouse, fix: Fix) -> tuple[Node, dict[str, Node]]:
    """``fix``'s condition and assignments checked against its table's columns."""
    from neurolake_spark import bulk
    from neurolake_spark.bulk_guard import table_columns
    from neurolake_spark.conditions import bind, bind_assignments

    ref = lh.resolve(fix.table)
    if not bulk.exists(lh.spark, ref):
        raise PipelineError(f"fix {fix.file}: table {fix.table} does not exist yet")
    if fix.where is None:  # load_fix requires one for updates and deletes
        raise PipelineError(f"fix {fix.file}: missing where")
    columns = table_columns(lh.spark, ref.format, ref.uri)
    where = bind(fix.where, columns, f"fix {fix.file}: where")
    return where, bind_assignments(fix.assignments, columns, f"fix {fix.file}: set")


def _fix_impact(lh: Lakehouse, fix: Fix, where: Node) -> RowImpact:
    from neurolake_spark.bulk_guard import check_rows

    ref = lh.resolve(fix.table)
    return check_rows(
        lh.spark,
        ref.format,
        ref.uri,
        fix.table,
        where,
        fix.all_rows,
        refusal=f"fix {fix.file}: {fix.op} {fix.table}",
        hint=f'add "all_rows": true to the fix to {fix.op} every row',
    )


def preview_fixes(lh: Lakehouse, batch_date: str) -> list[str]:
    """What each fix file of ``batch_date`` would change (rows per data file); changes nothing."""
    lines: list[str] = []
    for fix in load_fixes(lh, batch_date):
        if fix.op == "erase":
            values = ",".join(str(v) for v in fix.values)
            impacts = erasure_impact(lh, fix.table, fix.key, values)
        else:
            impacts = [_fix_impact(lh, fix, _bound_fix(lh, fix)[0])]
        lines.extend(f"{fix.file}: {impact.describe(fix.op)}" for impact in impacts)
    return lines


def apply_fixes(lh: Lakehouse, batch_date: str, run: JobRun) -> list[str]:
    """Apply every fix file of ``batch_date`` in name order; re-running applies them again,
    which changes nothing (updates and deletes are by condition, erasures by key).

    All files are parsed and their tables checked fixable first; each condition is then checked
    against its table just before it is applied (one that matches every row needs ``all_rows``).
    Every request of the erasure register is applied again first (rows a source re-sent), and
    each erase fix is added to the register, so later nights erase its keys again."""
    from neurolake_spark import bulk
    from neurolake_spark.conditions import to_column

    applied = []
    fixes = load_fixes(lh, batch_date)
    applied.extend(reapply_erasures(lh, run))
    for fix in fixes:
        if fix.op == "erase":
            origin = f"fix {fix.file} of {batch_date}"
            erase_everywhere(lh, fix.table, fix.key, ",".join(str(v) for v in fix.values), run, origin=origin)
        else:
            where, assignments = _bound_fix(lh, fix)
            _fix_impact(lh, fix, where)
            ref = lh.resolve(fix.table)
            if fix.op == "update":
                values = {column: to_column(node) for column, node in assignments.items()}
                version = bulk.update(lh.spark, ref, to_column(where), values, run_id=run.run_id)
            else:
                version = bulk.delete(lh.spark, ref, to_column(where), run_id=run.run_id)
            run.add_output(ref.name, format=ref.format, path=ref.uri, version=version.version)
        applied.append(f"{fix.file}: {fix.op} {fix.table}")
    return applied


def _fixes(args: argparse.Namespace) -> int:
    from neurolake_spark.parsing import parse_date

    lh = open_lakehouse(args)
    batch_date = parse_date(args.date).isoformat()
    if args.dry_run:
        for line in preview_fixes(lh, batch_date):
            print(line)
        return 0
    run = lh.run("bulk_fixes", run_date=batch_date)
    with run_lock(lh.settings, f"bulk fixes for {batch_date}", run, dates=[batch_date]), run:
        applied = apply_fixes(lh, batch_date, run)
    for line in applied:
        print(f"applied {line}")
    print(f"bulk fixes {batch_date}: {len(applied)} applied (from {fixes_folder(lh, batch_date)})")
    return 0
