"""The runbooks in docs/runbooks/: every command they name is real, and the important ones work.

1. Every ``neurolake ...`` line of a bash block parses with the real ``neurolake`` parser
   (and has a handler); every ``spark-submit ... jobs/X.py ARGS`` names an existing job
   whose CLI parses ARGS.
2. Behaviour, on a private copy of the shared nightly warehouse, through the CLI entry
   point: roll back a bad night, re-run a date, erase a data subject (+ vacuum + proof
   in the catalog), restore from a backup.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality

from neurolake_spark.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
LOCAL_CONF = ROOT / "conf" / "local.yaml"
EXPECTED = {
    "deploy",
    "rollback-bad-night",
    "rerun-backfill",
    "failed-quality-gate",
    "gdpr-erasure",
    "restore-from-backup",
    "lineage-backend-down",
}
JOB_PREFIX = re.compile(r"main\(\[(.*?)\*sys\.argv")


def shell_commands(markdown: str) -> list[list[str]]:
    """Commands of the bash blocks: continuations joined, NAME=value assignments expanded."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", markdown, re.S):
        variables: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            assignment = re.fullmatch(r"([A-Z_]+)=(\S+)", line)
            if assignment:
                variables[assignment.group(1)] = assignment.group(2)
                continue
            for name, value in variables.items():
                line = (
                    line.replace(f'"${name}"', value)
                    .replace(f"${{{name}}}", value)
                    .replace(f"${name}", value)
                )
            commands.extend(split_pipeline(line))
    return commands


def split_pipeline(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``||``, ``;``, ``|``; redirections dropped)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current, tokens = [], [], list(lexer)
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        elif token in (">", ">>", "<"):
            skip = True
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def runbook_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for tokens in shell_commands(path.read_text()):
            if tokens[0] in ("neurolake", "spark-submit"):
                found.append((path.stem, tokens))
    return found


def test_the_runbooks_are_all_there_and_each_names_neurolake_commands():
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == EXPECTED
    with_commands = {name for name, tokens in runbook_commands() if tokens[0] == "neurolake"}
    assert with_commands == EXPECTED


def _parse(argv: list[str], capsys) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"'neurolake {' '.join(argv)}' does not parse: {capsys.readouterr().err.strip()}")
    assert callable(getattr(args, "handler", None)), f"neurolake {' '.join(argv)} has no handler"


@pytest.mark.parametrize(
    "runbook, tokens", runbook_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_every_runbook_command_is_a_real_command_with_valid_flags(runbook, tokens, capsys):
    if tokens[0] == "neurolake":
        _parse(tokens[1:], capsys)
        return
    job = next(t for t in tokens if t.startswith("jobs/") and t.endswith(".py"))
    assert (ROOT / job).is_file(), f"{runbook}: {job} does not exist"
    assert tokens[tokens.index("--jars") + 1] == "$(neurolake jars)"
    prefix = shlex.split(JOB_PREFIX.search((ROOT / job).read_text()).group(1).replace(",", " "))
    _parse(prefix + tokens[tokens.index(job) + 1 :], capsys)


# ----------------------------------------------------------------- behaviour


@pytest.fixture
def warehouse(nightly_warehouse, tmp_path, make_lakehouse):
    """A private, writable copy of the shared nightly warehouse and its Lakehouse."""
    source, _ = nightly_warehouse
    copy = tmp_path / "warehouse"
    shutil.copytree(source.settings.warehouse, copy)
    return make_lakehouse(copy)


def cli(lh, *argv: str) -> int:
    return main(
        [*argv, "--conf-file", str(LOCAL_CONF), "--set", f"storage.warehouse={lh.settings.warehouse}"]
    )


def test_rollback_a_bad_night_with_table_restore(warehouse, capsys):
    from neurolake_spark import bulk

    ref = warehouse.resolve("gold.daily_revenue")
    good = bulk.current_version(warehouse.spark, ref).version
    bulk.overwrite(warehouse.spark, ref, warehouse.table("gold.daily_revenue").limit(3))
    assert cli(warehouse, "table", "history", "gold.daily_revenue") == 0
    history = capsys.readouterr().out
    assert re.search(rf"^\s+{good + 1}\s", history, re.M) and re.search(rf"^\s+{good}\s", history, re.M)
    assert cli(warehouse, "table", "restore", "gold.daily_revenue", "--version", str(good)) == 0
    assert f"new version {good + 2}" in capsys.readouterr().out
    assert_df_equality(
        warehouse.table("gold.daily_revenue"),
        warehouse.table("gold.daily_revenue", version=good),
        ignore_row_order=True,
    )


def test_rerunning_a_past_date_leaves_the_tables_unchanged(warehouse):
    from tests.conftest import DAYS

    before = {t: warehouse.table(t).localCheckpoint() for t in ("silver.orders", "silver.customers")}
    assert cli(warehouse, "step", "silver", "--date", DAYS[0]) == 0
    for name, frame in before.items():
        assert_df_equality(warehouse.table(name), frame, ignore_row_order=True, ignore_nullable=True)


def test_gdpr_erasure_deletes_everywhere_vacuums_old_files_and_is_in_the_catalog(warehouse, capsys):
    from pyspark.sql import functions as F

    from neurolake_spark.cli.ops import tables_with_column

    ids = [
        r["customer_id"]
        for r in warehouse.table("silver.orders")
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .limit(2)
        .collect()
    ]
    holders = tables_with_column(warehouse, "customer_id")
    assert {"silver.customers", "silver.orders", "bronze.customers", "gold.customer_ltv"} <= set(holders)

    def rows_in_any_file(name: str) -> int:
        ref = warehouse.resolve(name)
        files = [str(p) for p in ref.path.rglob("*.parquet") if "_delta_log" not in p.parts]
        return warehouse.spark.read.parquet(*files).where(F.col("customer_id").isin(ids)).count()

    assert rows_in_any_file("silver.orders") > 0
    values = ",".join(str(i) for i in ids)
    assert (
        cli(
            warehouse,
            "erase",
            "--table",
            "silver.customers",
            "--key",
            "customer_id",
            "--values",
            values,
            "--vacuum",
        )
        == 0
    )
    out = capsys.readouterr().out
    for name in holders:
        assert re.search(rf"erased\s+\d+ rows from {re.escape(name)}$", out, re.M), out
        assert warehouse.table(name).where(F.col("customer_id").isin(ids)).count() == 0
        assert rows_in_any_file(name) == 0, f"{name}: an old file still holds the erased rows"
    run_id = re.search(r"done in run (\S+);", out).group(1)
    assert cli(warehouse, "runs", "list", "--job", "erase", "--format", "json") == 0
    assert run_id in capsys.readouterr().out


def test_restore_a_lost_table_from_backup(warehouse, tmp_path, capsys):
    lost = warehouse.resolve("silver.orders")
    expected = warehouse.table("silver.orders").localCheckpoint()
    assert cli(warehouse, "backup", "--all", "--to", str(tmp_path / "backup")) == 0
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert set(manifest["tables"]) == set(warehouse.tables.names())
    shutil.rmtree(lost.path)
    assert (
        cli(
            warehouse,
            "restore",
            str(tmp_path / "backup"),
            "silver.orders",
            "--to",
            str(tmp_path / "restored"),
            "--verify",
        )
        == 0
    )
    assert "rows counted" in capsys.readouterr().out
    shutil.move(tmp_path / "restored" / "silver" / "orders", lost.path)
    assert_df_equality(
        warehouse.table("silver.orders"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_compact_every_table_or_only_the_nights_partition(warehouse, capsys):
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from neurolake_spark import bulk
    from tests.conftest import DAYS

    def files(name: str, where: str = "true") -> int:
        return (
            DeltaTable.forPath(warehouse.spark, warehouse.resolve(name).uri)
            .toDF()
            .where(where)
            .select(F.input_file_name())
            .distinct()
            .count()
        )

    night = f"_batch_date = '{DAYS[1]}'"
    products, orders = warehouse.resolve("silver.products"), warehouse.resolve("bronze.orders")
    bulk.overwrite(warehouse.spark, products, warehouse.table("silver.products").repartition(3))
    bulk.overwrite_where(
        warehouse.spark, orders, warehouse.table("bronze.orders").where(night).repartition(3), night
    )
    assert files("silver.products") == 3 and files("bronze.orders", night) == 3
    before = {
        name: bulk.current_version(warehouse.spark, ref).version
        for name, ref in (("silver.products", products), ("bronze.orders", orders))
    }

    assert cli(warehouse, "table", "optimize", "--all", "--date", DAYS[1]) == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"^optimized silver\.products \(version {before['silver.products'] + 1}\)$", out, re.M
    ), out
    assert re.search(
        rf"^optimized bronze\.orders where {re.escape(night)} \(version {before['bronze.orders'] + 1}\)$",
        out,
        re.M,
    ), out
    assert len(re.findall(r"^optimized ", out, re.M)) == len(warehouse.tables.names())
    assert files("silver.products") == 1 and files("bronze.orders", night) == 1
