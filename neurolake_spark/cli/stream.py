"""``neurolake stream``: continuous ingestion of a source into bronze.

See :mod:`neurolake_spark.stream_ingest`.
"""

from __future__ import annotations

import argparse

from neurolake_spark.cli.common import add_environment_options, open_lakehouse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stream", help="land new raw files (or new NCF commits) of a source into bronze, exactly once"
    )
    add_environment_options(p)
    p.add_argument("--source", required=True, help="a source of the pipeline definition, e.g. orders")
    p.add_argument("--available-now", action="store_true", help="process what has arrived, then stop")
    p.add_argument(
        "--trigger-seconds",
        type=float,
        default=10.0,
        help="micro-batch interval when running continuously (default 10)",
    )
    p.add_argument("--timeout", type=float, help="stop a continuous run after this many seconds")
    p.set_defaults(handler=_stream)


def _stream(args: argparse.Namespace) -> int:
    # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
    from neurolake_spark.stream_ingest import stream_source

    lh = open_lakehouse(args)
    with lh.run("stream_ingest") as run:
        counts = stream_source(
            lh,
            args.source,
            run,
            available_now=args.available_now,
            trigger_seconds=args.trigger_seconds,
            timeout=args.timeout,
        )
    print(
        f"stream {counts.source}: {counts.read} rows read, {counts.accepted} landed, "
        f"{counts.quarantined} quarantined (run {run.run_id})"
    )
    return 0
