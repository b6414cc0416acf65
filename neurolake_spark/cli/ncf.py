"""``neurolake ncf ...``: commands on NCF files.

Each sub-command is one ``_add_<name>(commands)`` function that builds its parser and sets
``handler``; :func:`register` calls them in order, so adding a command is adding a function
to :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from contextlib import nullcontext

import ncf_datasource
from ncf_datasource.table import NCFTable, compact, vacuum
from neurolake_spark.cli.common import add_environment_options, open_lakehouse
from neurolake_spark.locks import run_lock
from neurolake_spark.pipeline_config import TABLE_NAME


def _inspect(args: argparse.Namespace) -> int:
    info = ncf_datasource.inspect(args.file)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        print(ncf_datasource.format_inspect(info))
    return 0


def _add_inspect(commands) -> None:
    p = commands.add_parser(
        "inspect",
        help="show the footer of an NCF file: schema, tags, row groups, encodings, statistics, indexes",
    )
    p.add_argument("file", help="path of the .ncf file")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(handler=_inspect)


def _table_path(args: argparse.Namespace) -> str:
    """The folder of the table argument: a path, or a logical ``layer.table`` name of the environment."""

    if os.path.exists(args.table) or not TABLE_NAME.match(args.table):
        return args.table

    return open_lakehouse(args).resolve(args.table).uri


def _add_table_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="NCF table: a folder, or a logical name such as silver.events")
    add_environment_options(parser)


def _run_step(
    args: argparse.Namespace,
    job: str,
    path: str,
    action,
    what: str | None,
    exclusive: bool = False,
    committed=lambda result: None,
):
    """Run ``action(lh)`` inside a JobRun (metrics and lineage) and record the table it changed.

    ``committed(result)`` is the version the action committed (None when it committed none:
    then the table's current version is recorded). Unless ``what`` is None (a dry run), the
    table's lock is held meanwhile (see :mod:`neurolake_spark.locks`); ``what`` describes this
    command to whoever it stops."""

    lh = open_lakehouse(args)
    run = lh.run(job)
    lock = (
        nullcontext()
        if what is None
        else run_lock(lh.settings, what, run, tables=[path], exclusive=exclusive)
    )
    with lock, run:
        result = action(lh)
        table = NCFTable.open(path)
        version = committed(result)
        version = table.version if version is None else version
        run.add_output(
            args.table,
            format="ncf",
            path=str(table.path),
            version=version,
            rows=table.snapshot(version).num_rows,
        )
    return result


def _compact(args: argparse.Namespace) -> int:
    path = _table_path(args)
    table = NCFTable.open(path)
    version = _run_step(
        args,
        "ncf_compact",
        path,
        lambda lh: compact(table, target_file_mb=args.target_file_mb, sort_by=args.sort_by),
        f"an NCF compaction of {args.table}",
        committed=lambda version: version,
    )
    if version is None:
        print(f"{path}: nothing to compact ({len(table.snapshot().files)} files)")
    else:
        m = table.log.read(version)["metrics"]
        print(
            f"{path}: version {version}: {m['num_removed_files']} files compacted into {m['num_added_files']}"
        )
    return 0


def _add_compact(commands) -> None:
    p = commands.add_parser(
        "compact",
        help="bin-pack small files of an NCF table (optionally sorted to rebuild the learned index)",
    )
    _add_table_argument(p)
    p.add_argument(
        "--target-file-mb", type=float, default=128, help="size of the files to write (default 128)"
    )
    p.add_argument("--sort-by", metavar="COLUMN", help="sort rows by this column and index it")
    p.set_defaults(handler=_compact)


def _vacuum(args: argparse.Namespace) -> int:
    path = _table_path(args)
    table = NCFTable.open(path)
    deleted = _run_step(
        args,
        "ncf_vacuum",
        path,
        lambda lh: vacuum(table, args.retention_hours, force=args.force, dry_run=args.dry_run),
        None if args.dry_run else f"{'a forced' if args.force else 'an'} NCF vacuum of {args.table}",
        exclusive=args.force,
    )
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{path}: {verb} {len(deleted)} files")
    for name in deleted:
        print(f"  {name}")
    return 0


def _add_vacuum(commands) -> None:
    p = commands.add_parser(
        "vacuum", help="delete files an NCF table no longer references, older than the retention"
    )
    _add_table_argument(p)
    p.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        help="keep files needed by the last N hours (default 168)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="allow a retention below the safe minimum of 168 hours (runs only while no other "
        "command holds a lock in the warehouse, so no writer's uncommitted files are deleted)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    p.set_defaults(handler=_vacuum)


def _history(args: argparse.Namespace) -> int:
    entries = NCFTable.open(_table_path(args)).history(args.limit)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        when = dt.datetime.fromtimestamp(e["timestamp"] / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        m = e["metrics"]
        files = f"+{m.get('num_added_files', 0)}/-{m.get('num_removed_files', 0)} files"
        rows = f"+{m.get('num_added_rows', 0)}/-{m.get('num_removed_rows', 0)} rows"
        print(f"{e['version']:>6}  {when}  {e['operation']:<16} {files}  {rows}")
    return 0


def _add_history(commands) -> None:
    p = commands.add_parser("history", help="list the commits of an NCF table, newest first")
    _add_table_argument(p)
    p.add_argument("--limit", type=int, help="show only the last N commits")
    p.add_argument("--json", action="store_true", help="print the commits as JSON")
    p.set_defaults(handler=_history)


def _row_operation(args: argparse.Namespace, job: str, verb: str, assignments: dict | None = None) -> int:
    """Delete (``assignments`` None) or update the rows matching ``--where``, as job ``job``.

    The condition and assignments are parsed by :mod:`neurolake_spark.conditions` (never run
    as SQL text) and checked against the table's columns; a condition matching every row needs
    ``--all-rows``; ``--dry-run`` prints how many rows of which files would change."""
    # lazy: Spark and the data source's modules stay out of CLI start-up
    from ncf_datasource.spark import operations
    from neurolake_spark.bulk_guard import check_rows, table_columns
    from neurolake_spark.conditions import bind, bind_assignments, parse_condition, to_column, to_text

    path = _table_path(args)
    where = parse_condition(args.where, "--where")

    def checked(lh):
        columns = table_columns(lh.spark, "ncf", path)
        condition = bind(where, columns, "--where")
        impact = check_rows(
            lh.spark,
            "ncf",
            path,
            args.table,
            condition,
            args.all_rows,
            refusal=f"ncf {verb} {args.table}",
            hint=f"pass --all-rows to {verb} every row",
        )
        return condition, bind_assignments(assignments or {}, columns, "--assign"), impact

    if args.dry_run:
        print(checked(open_lakehouse(args))[2].describe(verb))
        return 0

    def operate(lh):
        condition, sets, impact = checked(lh)
        predicate = to_text(condition)
        if assignments is None:
            return operations.delete(lh.spark, path, to_column(condition), predicate), impact
        values = {column: to_column(node) for column, node in sets.items()}
        return operations.update(lh.spark, path, to_column(condition), values, predicate), impact

    version, impact = _run_step(
        args, job, path, operate, f"an NCF {verb} on {args.table}", committed=lambda result: result[0]
    )
    print(
        f"{path}: no row matches"
        if version is None
        else f"{path}: version {version} ({impact.matched:,} rows in {len(impact.files_matched):,} files)"
    )
    return 0


def _add_row_options(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--where",
        required=True,
        help="condition, e.g. \"status = 'test' AND amount < 0\": columns, literals, comparisons, "
        "AND/OR/NOT, IN, BETWEEN, LIKE, IS NULL, a few functions and CAST (see docs/ncf.md)",
    )
    parser.add_argument(
        "--all-rows", action="store_true", help=f"allow a condition that would {verb} every row"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help=f"print how many rows of which files would {verb}; change nothing",
    )


def _delete(args: argparse.Namespace) -> int:
    return _row_operation(args, "ncf_delete", "delete")


def _add_delete(commands) -> None:
    p = commands.add_parser("delete", help="delete the rows of an NCF table matching a condition")
    _add_table_argument(p)
    _add_row_options(p, "delete")
    p.set_defaults(handler=_delete)


def _update(args: argparse.Namespace) -> int:
    # lazy: the conditions module imports pyspark, kept out of CLI start-up
    from neurolake_spark.conditions import ConditionError, parse_assignment

    assignments = {}
    for item in args.assign:
        column, node = parse_assignment(item, "--assign")
        if column in assignments:
            raise ConditionError(f"--assign: column {column!r} set twice")
        assignments[column] = node
    return _row_operation(args, "ncf_update", "update", assignments)


def _add_update(commands) -> None:
    p = commands.add_parser("update", help="set columns on the rows of an NCF table matching a condition")
    _add_table_argument(p)
    _add_row_options(p, "update")
    p.add_argument(
        "--assign",
        action="append",
        required=True,
        metavar="COLUMN=EXPRESSION",
        help='a column\'s new value, e.g. --assign "status=\'void\'" or --assign "amount = amount * -1" '
        "(repeatable; the same language as --where)",
    )
    p.set_defaults(handler=_update)


SUBCOMMANDS = [_add_inspect, _add_compact, _add_vacuum, _add_history, _add_delete, _add_update]


def register(subparsers) -> None:
    """Add the ``ncf`` command and its sub-commands to the ``neurolake`` parser."""
    parser = subparsers.add_parser("ncf", help="work with NCF files", description="Commands on NCF files.")
    commands = parser.add_subparsers(dest="ncf_command", metavar="SUBCOMMAND", required=True)
    for add in SUBCOMMANDS:
        add(commands)
