"""``neurolake quality ...``: quality results and gates.

``quality report`` reads the catalog only (no Spark). Other quality sub-commands add
themselves to :data:`SUBCOMMANDS`: each entry takes the ``quality`` sub-parsers.

    neurolake quality report --date 2026-11-24
    neurolake quality report --table silver.orders --failed
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from neurolake_spark.cli.common import add_environment_options
from neurolake_spark.cli.display import QUALITY_HEADERS, in_cli_words, quality_rows, text_table, to_json
from neurolake_spark.cli.lineage import emit, open_store


def add_report_command(quality_commands: argparse._SubParsersAction) -> None:
    report = quality_commands.add_parser(
        "report",
        help="a table of quality results from the catalog (dataset, check, outcome, observed value...)",
    )
    add_environment_options(report)
    report.add_argument("--date", help="only runs for this batch date, YYYY-MM-DD")
    report.add_argument("--table", help="only checks on this table")
    report.add_argument("--failed", action="store_true", help="only failed checks")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(handler=in_cli_words(_report))


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_report_command]


def register(subparsers: argparse._SubParsersAction) -> None:
    quality = subparsers.add_parser("quality", help="data quality results and gates")
    quality_commands = quality.add_subparsers(dest="quality_command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(quality_commands)


def _report(args: argparse.Namespace) -> int:
    results = open_store(args).quality_report(args.date, args.table, args.failed)
    if args.format == "json":
        emit(to_json(results))
        return 0
    if not results:
        print(
            "no quality results"
            + (f" for {args.date}" if args.date else "")
            + (f" on {args.table}" if args.table else "")
        )
        return 0
    failed = sum(not r["success"] for r in results)
    emit(text_table(QUALITY_HEADERS, quality_rows(results)))
    print(f"{len(results)} check(s), {failed} failed")
    return 0
