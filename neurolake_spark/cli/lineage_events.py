"""``neurolake lineage replay``: deliver the lineage events spooled while a backend was down.

The ``lineage`` command group lives in :mod:`neurolake_spark.cli.lineage`, which calls
:func:`add_replay_command` on its sub-parsers.
"""

from __future__ import annotations

import argparse
import sys

from neurolake_spark.cli.common import add_environment_options
from neurolake_spark.config import load_settings


def add_replay_command(lineage_subparsers: argparse._SubParsersAction) -> None:
    """Add ``replay`` to the ``neurolake lineage`` sub-commands."""
    replay = lineage_subparsers.add_parser(
        "replay",
        help="deliver spooled lineage events (and the Spark listener's) in order; exit 1 if some still wait",
        description="Deliver the lineage events spooled while a backend was down, oldest first, trying each "
        "backend once even if its circuit breaker is open. Exits 1 while events still wait.",
    )
    add_environment_options(replay)
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from neurolake_spark.lineage.delivery import replay  # heavy (the OpenLineage client): this command only

    settings = load_settings(args.conf_file, args.overrides)
    report = replay(settings, force=True)
    if report.spark_listener_events:
        print(f"ingested {report.spark_listener_events} event(s) of the Spark listener")
    for result in report.results:
        line = f"{result.transport_id}: delivered {result.delivered}, waiting {result.pending}"
        if result.corrupt:
            line += f", moved aside {result.corrupt} to {settings.lineage_spool_dir / 'corrupt'}"
        if result.error and result.pending:
            line += f" ({result.error})"
        print(line)
    waiting = f"{report.pending} still waiting in {settings.lineage_spool_dir}"
    print(f"replayed {report.delivered} event(s); {waiting}")
    if report.pending:
        print(
            "neurolake: error: some lineage events could not be delivered yet; run replay again later",
            file=sys.stderr,
        )
        return 1
    return 0
