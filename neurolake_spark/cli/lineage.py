"""Auditor commands over the catalog: ``lineage``, ``catalog`` and ``runs``.

None of them starts Spark: they read ``<warehouse>/catalog.db`` (or ``catalog.url``).

    neurolake lineage show gold.daily_revenue --format html -o lineage.html
    neurolake lineage show gold.daily_revenue --column revenue --as-of 2026-11-24 --format mermaid
    neurolake lineage path raw.orders gold.daily_revenue
    neurolake lineage diff gold.daily_revenue --from 2026-11-23 --to 2026-11-24
    neurolake catalog search email --by column
    neurolake catalog show silver.customers
    neurolake catalog tag gold.daily_revenue finance
    neurolake runs list --job silver --limit 5
    neurolake runs show 0b6f...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.graph import DIRECTIONS
from neurolake_spark.catalog.queries import SEARCH_FIELDS
from neurolake_spark.catalog.render import FORMATS, render
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.catalog.words import STATE_WORDS, describe_source, format_time
from neurolake_spark.cli.common import add_environment_options
from neurolake_spark.cli.display import (
    QUALITY_HEADERS,
    SUMMARY_HEADERS,
    in_cli_words,
    quality_rows,
    summary_rows,
    text_table,
    to_json,
)
from neurolake_spark.cli.lineage_events import add_replay_command
from neurolake_spark.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    lineage = subparsers.add_parser("lineage", help="lineage graphs of tables, as of any time")
    lineage_commands = lineage.add_subparsers(dest="lineage_command", metavar="COMMAND", required=True)
    show = lineage_commands.add_parser(
        "show",
        help="draw where a table (or one column) comes from and what it feeds",
        description="Draw the lineage graph of a table: "
        "HTML (one self-contained page), SVG, DOT, Mermaid or JSON.",
    )
    add_environment_options(show)
    show.add_argument("table", help="logical table name, e.g. gold.daily_revenue")
    show.add_argument("--column", help="follow one column instead of the whole table")
    show.add_argument(
        "--as-of",
        metavar="TIME",
        help="the graph as it stood then: YYYY-MM-DD (end of that day) or an ISO time; UTC by default",
    )
    show.add_argument("--depth", type=int, default=10, help="how many jobs to follow (default 10)")
    show.add_argument(
        "--direction",
        choices=DIRECTIONS,
        help="upstream, downstream or both (default: both for a table, upstream for a column)",
    )
    show.add_argument("--format", choices=FORMATS, default="html", help="output format (default html)")
    show.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    show.set_defaults(handler=in_cli_words(_show))

    path = lineage_commands.add_parser("path", help="the chain of jobs from one table to another")
    add_environment_options(path)
    path.add_argument("source")
    path.add_argument("target")
    path.add_argument("--as-of", metavar="TIME")
    path.set_defaults(handler=in_cli_words(_path))

    diff = lineage_commands.add_parser("diff", help="what changed in a table's lineage between two times")
    add_environment_options(diff)
    diff.add_argument("table")
    diff.add_argument("--from", dest="before", required=True, metavar="TIME")
    diff.add_argument("--to", dest="after", required=True, metavar="TIME")
    diff.add_argument("--depth", type=int, default=10)
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.set_defaults(handler=in_cli_words(_diff))
    add_replay_command(lineage_commands)

    catalog = subparsers.add_parser("catalog", help="search and describe the tables the catalog knows")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", metavar="COMMAND", required=True)
    listing = catalog_commands.add_parser("list", help="every table with owner, versions and quality")
    search = catalog_commands.add_parser(
        "search", help="find tables by name, column, tag, owner or description"
    )
    search.add_argument("text")
    search.add_argument(
        "--by", choices=SEARCH_FIELDS, default="any", help="where to look (default: everywhere)"
    )
    describe = catalog_commands.add_parser(
        "show", help="one table: schema, versions, quality, lineage of columns"
    )
    describe.add_argument("table")
    describe.add_argument("--as-of", metavar="TIME")
    stats = catalog_commands.add_parser("stats", help="counts, last update and the quality pass rate")
    for command, handler in ((listing, _list), (search, _search), (describe, _describe), (stats, _stats)):
        add_environment_options(command)
        command.add_argument("--format", choices=("text", "json"), default="text")
        command.set_defaults(handler=in_cli_words(handler))
    for name, handler, verb in (("tag", _tag, "add"), ("untag", _untag, "remove")):
        command = catalog_commands.add_parser(name, help=f"{verb} tags of a table")
        add_environment_options(command)
        command.add_argument("table")
        command.add_argument("tags", nargs="+", metavar="TAG")
        command.set_defaults(handler=in_cli_words(handler))

    runs = subparsers.add_parser("runs", help="pipeline runs recorded in the catalog")
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    run_list = runs_commands.add_parser("list", help="the latest runs, newest first")
    run_list.add_argument(
        "--job", help="only runs of this job (ingest, silver, gold, maintenance, nightly...)"
    )
    run_list.add_argument("--limit", type=int, default=20)
    run_show = runs_commands.add_parser("show", help="one run: state, times, code version, tables, quality")
    run_show.add_argument("run_id")
    for command, handler in ((run_list, _runs), (run_show, _run)):
        add_environment_options(command)
        command.add_argument("--format", choices=("text", "json"), default="text")
        command.set_defaults(handler=in_cli_words(handler))


def open_store(args: argparse.Namespace) -> CatalogStore:
    """The catalog of the command's environment, with owners and tags synced from the pipeline definition."""
    store = CatalogStore.from_settings(load_settings(args.conf_file, args.overrides), create=False)
    store.sync_definitions()
    return store


def emit(text: str, output: str | None = None) -> None:
    """Print ``text``, or write it to ``output``."""
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot write {output}: {exc.strerror}") from None
    print(f"wrote {output}")


def _show(args: argparse.Namespace) -> int:
    store = open_store(args)
    graph = store.graph()
    if args.column:
        result = graph.column_lineage(
            args.table, args.column, args.direction or "upstream", args.depth, args.as_of
        )
    else:
        result = graph.lineage(args.table, args.direction or "both", args.depth, args.as_of)
    emit(render(result, args.format, store), args.output)
    return 0


def _path(args: argparse.Namespace) -> int:
    result = open_store(args).graph().path(args.source, args.target, args.as_of)
    if result is None:
        print(f"no lineage path from {args.source} to {args.target}")
        return 1
    by_target = {e.target: e for e in result.edges}
    node, chain = result.root, []
    while node is not None:
        chain.append(node)
        node = next((e.target for e in result.edges if e.source == node), None)
    for node_id in chain:
        node = result.nodes[node_id]
        if node.kind == "job":
            edge = by_target[node_id]
            print(f"  -> job {node.name} (run {edge.run}, completed {format_time(edge.completed)})")
        else:
            print(f"{node.name}" + (f" version {node.version}" if node.version is not None else ""))
    return 0


def _diff(args: argparse.Namespace) -> int:
    result = open_store(args).graph().diff(args.table, args.before, args.after, depth=args.depth)
    if args.format == "json":
        emit(to_json(result))
        return 0
    print(f"lineage of {args.table} from {format_time(result.before)} to {format_time(result.after)}")
    for title, edges in (("added", result.added_edges), ("removed", result.removed_edges)):
        print(f"{title} links: {len(edges)}")
        for source, target in edges:
            print(f"  {source} -> {target}")
    print(f"versions written in between: {len(result.new_versions)}")
    if result.new_versions:
        print(
            text_table(
                ["table", "version", "job", "completed", "run"],
                [
                    [v["dataset"], v["version"], v["job"], v["completed"], v["run"]]
                    for v in result.new_versions
                ],
            )
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    datasets = open_store(args).list_datasets()
    emit(to_json(datasets) if args.format == "json" else text_table(SUMMARY_HEADERS, summary_rows(datasets)))
    return 0


def _search(args: argparse.Namespace) -> int:
    found = open_store(args).search(args.text, args.by)
    if args.format == "json":
        emit(to_json(found))
    elif not found:
        print(f"no table matches {args.text!r}" + ("" if args.by == "any" else f" by {args.by}"))
    else:
        emit(
            text_table(
                SUMMARY_HEADERS + ["description"],
                [row + [d.description] for row, d in zip(summary_rows(found), found)],
            )
        )
    return 0


def _describe(args: argparse.Namespace) -> int:
    detail = open_store(args).get_dataset(args.table, as_of=args.as_of)
    if args.format == "json":
        emit(to_json(detail))
        return 0
    d = detail.summary
    print(f"{d.name}  ({d.format or 'format unknown'}, namespace {d.namespace})")
    for label, value in (
        ("description", d.description),
        ("owner", d.owner),
        ("tags", ", ".join(d.tags)),
        ("written by", ", ".join(detail.writers)),
        ("read by", ", ".join(detail.readers)),
    ):
        print(f"  {label + ':':<13}{value or '-'}")
    print("\ncolumns")
    print(
        text_table(
            ["column", "type", "comes from"],
            [
                [
                    c["name"],
                    c["type"],
                    "; ".join(
                        f"{describe_source(s)} {s['dataset']}.{s['column']}"
                        for s in detail.column_lineage.get(c["name"], [])
                    ),
                ]
                for c in detail.columns
            ],
        )
    )
    print(f"\nversions (newest first, {len(detail.schema_versions)} schema version(s))")
    print(
        text_table(
            ["version", "job", "run date", "completed", "rows", "inputs", "code version", "run"],
            [
                [
                    v["version"],
                    v["job"],
                    v["run_date"],
                    v["completed"],
                    v["rows"],
                    ", ".join(
                        f"{i['dataset']} v{i['version']}" if i["version"] is not None else i["dataset"]
                        for i in v["inputs"]
                    ),
                    v["code_version"],
                    v["run"],
                ]
                for v in detail.versions
            ],
        )
    )
    print("\nquality results (newest first)")
    print(text_table(QUALITY_HEADERS, quality_rows(detail.quality)) if detail.quality else "  none recorded")
    return 0


STATS_COUNTS = ("namespaces", "datasets", "jobs", "runs", "events", "quality_results", "dataset_versions")


def _stats(args: argparse.Namespace) -> int:
    stats = open_store(args).stats()
    by_state = dict(sorted((STATE_WORDS[state], count) for state, count in stats["runs_by_state"].items()))
    if args.format == "json":
        emit(to_json({**stats, "runs_by_state": by_state}))
        return 0
    for name in STATS_COUNTS:
        print(f"{name.replace('_', ' '):<18}{stats[name]:,}")  # type: ignore[literal-required]
    print(f"{'runs by state':<18}{', '.join(f'{k} {v:,}' for k, v in by_state.items()) or '-'}")
    print(f"{'last event':<18}{format_time(stats['last_event']) or '-'}")
    rate = stats["quality_pass_rate"]
    print(f"{'quality passed':<18}{'-' if rate is None else f'{rate:.1%}'}")
    return 0


def _tag(args: argparse.Namespace) -> int:
    tags = open_store(args).tag(args.table, args.tags)
    print(f"{args.table} tags: {', '.join(tags)}")
    return 0


def _untag(args: argparse.Namespace) -> int:
    tags = open_store(args).untag(args.table, args.tags)
    print(f"{args.table} tags: {', '.join(tags) or 'none'}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    runs = open_store(args).list_runs(args.job, args.limit)
    if args.format == "json":
        emit(to_json(runs))
        return 0
    emit(
        text_table(
            ["run", "job", "state", "run date", "started", "seconds", "code version", "error"],
            [
                [
                    r["run"],
                    r["job"],
                    r["state"],
                    r["run_date"],
                    r["started"],
                    None if r["duration_seconds"] is None else f"{r['duration_seconds']:.1f}",
                    r["code_version"],
                    r["error"],
                ]
                for r in runs
            ],
        )
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    run = open_store(args).get_run(args.run_id)
    if args.format == "json":
        emit(to_json(run))
        return 0
    print(f"run {run['run']}: job {run['job']}, {STATE_WORDS[run['state']]}")
    for label, value in (
        ("run date", run["run_date"]),
        ("started", format_time(run["started"])),
        ("ended", format_time(run["ended"])),
        ("seconds", None if run["duration_seconds"] is None else f"{run['duration_seconds']:.1f}"),
        ("parent run", run["parent"]),
        ("code version", run["code_version"]),
        ("error", run["error"]),
    ):
        print(f"  {label + ':':<14}{value or '-'}")
    if run["children"]:
        print("\nsteps")
        print(
            text_table(
                ["run", "job", "state", "started", "ended"],
                [[c["run"], c["job"], c["state"], c["started"], c["ended"]] for c in run["children"]],
            )
        )
    for role in ("inputs", "outputs"):
        print(f"\n{role}")
        print(
            text_table(
                ["table", "version", "rows", "bytes", "files"],
                [[d["dataset"], d["version"], d["rows"], d["bytes"], d["files"]] for d in run[role]],
            )
            if run[role]
            else "  none"
        )
    if run["quality"]:
        print("\nquality results")
        print(text_table(QUALITY_HEADERS, quality_rows(run["quality"])))
    return 0
