"""Pipeline commands: ``generate``, ``nightly``, ``step``, ``jars``, ``tables``."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from neurolake_spark import jars
from neurolake_spark.cli.common import add_environment_options, open_lakehouse
from neurolake_spark.config import load_settings
from neurolake_spark.demo_data import generate_day
from neurolake_spark.parsing import parse_date
from neurolake_spark.tables import TableResolver


def register(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser("generate", help="write one or more days of demo raw data")
    add_environment_options(gen)
    gen.add_argument("--date", required=True, help="first day, YYYY-MM-DD")
    gen.add_argument("--days", type=int, default=1, help="number of consecutive days (default 1)")
    gen.add_argument("--scale", type=float, help="1 = about 100k orders a day (default: generator.scale)")
    gen.set_defaults(handler=_generate)

    nightly = subparsers.add_parser("nightly", help="run the nightly pipeline for a date")
    add_environment_options(nightly)
    nightly.add_argument("--date", required=True, help="batch date, YYYY-MM-DD")
    nightly.set_defaults(handler=_nightly)

    step = subparsers.add_parser("step", help="run one pipeline step for a date")
    add_environment_options(step)
    step.add_argument("name", help="ingest | silver | gold | maintenance")
    step.add_argument("--date", required=True, help="batch date, YYYY-MM-DD")
    step.set_defaults(handler=_step)

    jars = subparsers.add_parser(
        "jars", help="fetch the JVM jars once and print them for spark-submit --jars"
    )
    add_environment_options(jars)
    jars.set_defaults(handler=_jars)

    tables = subparsers.add_parser("tables", help="list the tables the pipeline declares, with their paths")
    add_environment_options(tables)
    tables.set_defaults(handler=_tables)


def _generate(args: argparse.Namespace) -> int:
    settings = load_settings(args.conf_file, args.overrides)
    first = parse_date(args.date)
    scale = args.scale if args.scale is not None else settings.generator.scale
    for offset in range(max(1, args.days)):
        manifest = generate_day(
            settings.raw_dir, first + timedelta(days=offset), scale, settings.generator.seed
        )
        rows = ", ".join(f"{k} {v:,}" for k, v in manifest.rows.items())
        print(f"generated {manifest.date} (scale {scale:g}) into {settings.raw_dir}: {rows}")
    return 0


def _nightly(args: argparse.Namespace) -> int:
    # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
    from neurolake_spark.pipeline import format_summary, run_nightly

    lh = open_lakehouse(args)
    result = run_nightly(lh, args.date)
    print(format_summary(result))
    return 0


def _step(args: argparse.Namespace) -> int:
    # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
    from neurolake_spark.pipeline import run_step

    run = run_step(open_lakehouse(args), args.name, args.date)
    print(f"{run.job_name} {run.run_date}: {run.status} in {run.duration_seconds:.1f}s (run {run.run_id})")
    return 0


def _jars(args: argparse.Namespace) -> int:
    # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
    from neurolake_spark.session import jvm_coordinates

    settings = load_settings(args.conf_file, args.overrides)
    jars.check_java()
    paths = jars.resolve_all(jvm_coordinates(settings), settings.jvm.jars_dir)
    print(",".join(str(p) for p in paths))
    return 0


def _tables(args: argparse.Namespace) -> int:
    settings = load_settings(args.conf_file, args.overrides)
    resolver = TableResolver(settings.warehouse, settings.pipeline_definition())
    for name in resolver.names():
        ref = resolver.resolve(name)
        sys.stdout.write(f"{name:<22} {ref.format:<6} {ref.path}\n")
    return 0
