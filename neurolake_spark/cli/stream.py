"""``neurolake stream``: continuous ingestion of a source into bronze.

See :mod:`neurolake_spark.stream_ingest`.
"""

from __future__ import annotations

import argparse

from neurolake_spark.cli.common import add_environment_options, open_lakehouse
from neurolake_spark.locks import run_lock


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
    from neurolake_spark.stream_ingest import checkpoint_dir, stream_source

    lh = open_lakehouse(args)
    run = lh.run("stream_ingest")
    # Registered under the lock of its checkpoint folder (one query per source): a forced vacuum
    # or an erasure waits until it stops instead of deleting files it has not committed yet.
    lock = run_lock(
        lh.settings, f"a stream of source {args.source}", run.run_id, tables=[checkpoint_dir(lh, args.source)]
    )
    with lock, run:
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
