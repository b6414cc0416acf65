"""Quality gates: validate a batch with Great Expectations, then block, quarantine or warn.

One :class:`QualityGates` per job step holds the ephemeral GX context, the suites and the
PII masker. Its hooks plug into curate::

    with QualityGates(lh, batch_date) as gates:
        build_silver(lh, batch_date, run, before_merge=gates.silver_gate)

A hook gates the whole step in two phases. **Phase 1** checks every batch of the step and
writes nothing. The batches are checked concurrently, one thread each (Spark runs their small
jobs side by side, which on a small cluster mostly overlaps one check's driver work with
another's jobs). For each table with a suite, the batch is persisted once
(``MEMORY_AND_DISK_DESER``, flagged with the quarantine rules each row fails; in one partition
when small) by the job that counts its rows and each quarantine rule's failures, all of its
rules run in one GX validation (``SUMMARY`` results without unexpected values: counts only,
nothing collected), and the gate decides; then every outcome is recorded on the run, in the
order of the batches:

- **block**: a failed ``block`` rule (or a ``quarantine`` rule over its
  ``block_above_percent``) blocks the table. If any table of the step blocks, one
  :class:`QualityGateError` names every blocked table and rule, and nothing of the step is
  written (no quarantine rows, no table commits); each blocked table's full report is in
  ``<warehouse>/_quality/reports/date=D/<table>.json``;
- **quarantine**: the rows the rules' Spark predicates counted as failing must be as many as
  GX found unexpected;
- **warn**: recorded, the step continues.

**Phase 2** (nothing blocked): the failing rows of every table of the step are split off
(``where(not ok)``), PII masked, and written to ``quarantine.quality`` in one commit
(replacing that date's rows of those tables); then, table by table, the report is written,
the other rows (``where(ok)``, PII masked) go to the caller to write, and the batch's cache
is freed. Rows in = rows passed + rows quarantined.

GX 1.24 on PySpark 4.2 classic sessions works as is (its Spark engine only needs
``pyspark.sql``); the GX datasource is created with ``persist=False`` because the gate
persists the batch itself and frees it when the table is done. A whole table checked
before the next layer is not cached: GX's few aggregate jobs read only the columns they
need from Delta, which costs a third of caching every column first.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial, reduce
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.atomic_files import write_atomic
from neurolake_spark.concurrency import run_concurrently
from neurolake_spark.errors import ConfigError, PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.parsing import parse_date
from neurolake_spark.quality.pii import (
    Masker,
    SecretSource,
    detect_pii,
    load_policies,
    tags_from_spark_schema,
)
from neurolake_spark.quality.suites import Suite, import_gx, load_suites
from neurolake_spark.run_model import QualityResult, schema_of
from neurolake_spark.runs import JobRun

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "quarantine.quality"
FAILED_RULES = "_nl_failed_rules"
SUMMARY_COUNTS_ONLY = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
ONE_PARTITION_BYTES = 4 * 1024 * 1024
"""A batch Spark estimates at most this size (its input files, e.g. one night's bronze partition) is
cached as one partition: each of the checks' aggregate jobs is then one task, with no shuffle.
Bigger batches keep their partitions, so that filling the cache stays parallel."""
_gx_import: threading.Thread | None = None


def start_importing_gx() -> None:
    """Start importing Great Expectations in a background thread (it takes seconds), so that it
    overlaps Spark's start and a step's first jobs; the gates' own import waits for it to end.

    An import error is left to the gates' own import, which raises it."""
    global _gx_import
    if _gx_import is None:
        _gx_import = threading.Thread(target=_import_gx_quietly, name="import-great-expectations")
        _gx_import.start()


def _import_gx_quietly() -> None:
    try:
        import_gx()
    except Exception:
        log.debug("importing great_expectations in the background failed", exc_info=True)


class QualityGateError(PipelineError):
    """Critical quality rules failed: the step stops before writing any of its tables.

    ``report_paths``: the JSON report of each blocked table."""

    def __init__(self, message: str, report_paths: Sequence[Path] = ()):
        super().__init__(message)
        self.report_paths = list(report_paths)


@dataclass
class GateReport:
    """What one validation found and decided; written as JSON beside the warehouse."""

    table: str
    run_id: str
    batch_date: str
    rows_in: int | None = None
    rows_passed: int | None = None
    rows_quarantined: int = 0
    blocked_by: list[str] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    pii_masked: dict[str, str] = field(default_factory=dict)

    def write(self, directory: Path) -> Path:
        """Write the report as ``<directory>/<table>.json``, atomically: a reader sees the previous
        report or this one, never a part of it. Returns the path."""
        path = Path(directory) / f"{self.table}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path

    def summary(self) -> str:
        """A readable multi-line report (no row values, so no PII)."""
        lines = [
            f"quality gate {self.table} ({self.batch_date}, run {self.run_id}): "
            f"{'BLOCKED' if self.blocked_by else 'passed'}; rows in {self.rows_in}, "
            f"passed {self.rows_passed}, quarantined {self.rows_quarantined}"
        ]
        for result in self.results:
            mark = "ok  " if result["success"] else "FAIL"
            counts = (
                f"{result['unexpected_count']}/{result['element_count']} rows unexpected"
                if result["unexpected_count"] is not None
                else f"observed {result['observed_value']}"
            )
            rule = f"{result['expectation']:<28} {result['action']:<10} {result['severity']:<8}"
            lines.append(f"  {mark} {rule} {counts}")
        return "\n".join(lines)


@dataclass
class CheckedBatch:
    """A batch after phase 1 of its gate: validated and decided on, nothing written or recorded yet.

    ``frame`` is the batch flagged with the quarantine rules each row fails (persisted) when
    ``table`` has a suite, else the batch as given; ``plan`` says how its PII is masked;
    ``results`` are the suite's outcomes, in rule order."""

    table: str
    frame: DataFrame
    report: GateReport
    suite: Suite | None = None
    plan: dict = field(default_factory=dict)
    results: list[QualityResult] = field(default_factory=list)


def conf_relative(settings, path: Path) -> Path:
    """A quality setting's path; relative ones are relative to the settings file's folder."""
    path = Path(path).expanduser()
    if path.is_absolute() or settings.source_file is None:
        return path
    return Path(settings.source_file).parent / path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _estimated_bytes(df: DataFrame) -> int:
    """Spark's estimate of ``df``'s size, from the optimizer's statistics (its input files' sizes):
    ``df`` is planned, not computed."""
    return int(df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())


def _exception_message(info: dict | None) -> str | None:
    """The first line of the exception GX caught while evaluating an expectation, if any."""
    candidates = [info] if info and "raised_exception" in info else list((info or {}).values())
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "error").strip()
            return (message.splitlines() or ["error"])[0][:200]
    return None


class QualityGates:
    """The gates of one job step: suites, PII policies and one ephemeral GX context."""

    def __init__(self, lh: Lakehouse, batch_date: str):
        self.lh = lh
        self.batch_date = parse_date(batch_date)
        quality = lh.settings.quality
        definition = lh.settings.pipeline_definition()
        self.suites = load_suites(
            conf_relative(lh.settings, quality.suites), known_tables=list(definition.tables)
        )
        self.policies = load_policies(conf_relative(lh.settings, quality.pii_policies))
        self.masker = Masker(self.policies, SecretSource(quality))
        self._context = None
        self._gx_lock = threading.Lock()
        self._validations: dict[str, Any] = {}
        self._cached: list[DataFrame] = []

    def __enter__(self) -> QualityGates:
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False

    def release(self) -> None:
        """Unpersist the batches the gates cached."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()

    @property
    def reports_dir(self) -> Path:
        return self.lh.settings.warehouse / "_quality" / "reports" / f"date={self.batch_date.isoformat()}"

    # GX -------------------------------------------------------------------------------

    def _gx_context(self):
        if self._context is None:
            # a heavy optional import (seconds): only steps with a gate need it
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._context = import_gx().get_context(mode="ephemeral")
            self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
        return self._context

    def _validation_of(self, suite: Suite):
        """The GX validation of ``suite``, created on first use (under a lock: checks run in threads).

        Each table has its own GX data source, so concurrent validations share no execution engine."""
        with self._gx_lock:
            return self._validations.get(suite.table) or self._add_validation(suite)

    def _add_validation(self, suite: Suite):
        gx = import_gx()
        context = self._gx_context()
        batch = (
            context.data_sources.add_spark(name=suite.table, persist=False)
            .add_dataframe_asset(name=suite.table)
            .add_batch_definition_whole_dataframe(suite.table)
        )
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.table))
        for rule in suite.rules:
            expectation = rule.expectation(self.batch_date)
            expectation.meta = {"rule": rule.name}
            gx_suite.add_expectation(expectation)
        self._validations[suite.table] = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite)
        )
        return self._validations[suite.table]

    def validate(self, suite: Suite, df: DataFrame) -> list[QualityResult]:
        """Run every rule of ``suite`` on ``df`` in one GX validation; results in rule order."""
        suite.check_columns(df.columns)
        outcome = self._validation_of(suite).run(
            batch_parameters={"dataframe": df}, result_format=SUMMARY_COUNTS_ONLY
        )
        by_rule = {r.expectation_config.meta["rule"]: r for r in outcome.results}
        results = []
        for rule in suite.rules:
            gx_result = by_rule[rule.name]
            details = gx_result.result or {}
            observed = details.get("observed_value")
            error = _exception_message(gx_result.exception_info)
            if error:
                observed = f"not evaluated: {error}"
            results.append(
                QualityResult(
                    dataset=suite.table,
                    expectation=rule.name,
                    success=bool(gx_result.success),
                    severity=rule.severity,
                    action=rule.action,
                    column=", ".join(rule.columns) or None,
                    observed_value=_jsonable(observed),
                    unexpected_count=details.get("unexpected_count"),
                    element_count=details.get(
                        "element_count", observed if rule.type == "row_count_between" else None
                    ),
                )
            )
        return results

    # Decisions --------------------------------------------------------------------------

    @staticmethod
    def _blocking(suite: Suite, results: list[QualityResult]) -> list[str]:
        reasons = []
        for rule, result in zip(suite.rules, results):
            if result.success or rule.action == "warn":
                continue
            if result.unexpected_count is None and rule.row_level:
                reasons.append(f"rule '{rule.name}' ({rule.type}) {result.observed_value}")
            elif rule.action == "block":
                counts = (
                    f"{result.unexpected_count} of {result.element_count} rows unexpected"
                    if rule.row_level
                    else f"observed {result.observed_value}"
                )
                reasons.append(f"rule '{rule.name}' ({rule.type}) failed: {counts}")
            elif rule.block_above_percent is not None and result.element_count:
                percent = 100.0 * result.unexpected_count / result.element_count
                if percent > rule.block_above_percent:
                    reasons.append(
                        f"rule '{rule.name}' ({rule.type}) failed on {result.unexpected_count} of "
                        f"{result.element_count} rows ({percent:.2f}% > block_above_percent "
                        f"{rule.block_above_percent})"
                    )
        return reasons

    def _file(self, report: GateReport) -> Path:
        """Write ``report`` and log its summary; return where it is."""
        path = report.write(self.reports_dir)
        log.log(logging.ERROR if report.blocked_by else logging.INFO, "%s", report.summary())
        return path

    def _decide(self, suite: Suite, results: list[QualityResult], report: GateReport) -> None:
        """Put the results on the report and decide whether they block."""
        report.results = [asdict(r) for r in results]
        report.blocked_by = self._blocking(suite, results)

    @staticmethod
    def _record(checked: Sequence[CheckedBatch], run: JobRun) -> None:
        """Record the checks' outcomes and PII masking on the run, in the order of ``checked``."""
        for batch in checked:
            run.record_quality(batch.results)
            if batch.report.pii_masked:
                run.facts.setdefault("pii_masked", {})[batch.table] = dict(batch.report.pii_masked)

    def _raise_if_blocked(self, reports: list[GateReport]) -> None:
        """Raise one :class:`QualityGateError` naming every blocked table and rule (and their reports)."""
        blocked = [r for r in reports if r.blocked_by]
        if not blocked:
            return
        self.release()
        paths = [self._file(r) for r in blocked]
        tables = "; ".join(f"{r.table}: {', '.join(r.blocked_by)}" for r in blocked)
        label = "reports" if len(paths) > 1 else "report"
        raise QualityGateError(f"quality gate blocked {tables}; {label}: {', '.join(map(str, paths))}", paths)

    # Phase 1: check (no writes) -------------------------------------------------------

    def _persist(self, df: DataFrame) -> DataFrame:
        """Persist ``df``, in one partition if Spark estimates it at most :data:`ONE_PARTITION_BYTES`."""
        if _estimated_bytes(df) <= ONE_PARTITION_BYTES:
            df = df.coalesce(1)
        cached = df.persist(StorageLevel.MEMORY_AND_DISK_DESER)
        self._cached.append(cached)
        return cached

    def _unpersist(self, frame: DataFrame) -> None:
        frame.unpersist()
        self._cached = [f for f in self._cached if f is not frame]

    def _check(self, table: str, df: DataFrame, run: JobRun, sample_rows: int | None = None) -> CheckedBatch:
        """Count a batch's quarantine split, validate it, plan its PII masking and decide; write and
        record nothing (safe to run in a thread).

        The batch, flagged with the quarantine rules it fails, stays persisted for phase 2."""
        suite = self.suites.get(table)
        report = GateReport(table, run.run_id, self.batch_date.isoformat())
        if suite is None:
            return CheckedBatch(table, df, report, plan=self._pii_plan(table, df, report, sample_rows))

        quarantine_rules = [r for r in suite.rules if r.action == "quarantine"]
        failed = (
            F.array_compact(
                F.array(
                    *[F.when(~F.coalesce(r.passes(), F.lit(False)), F.lit(r.name)) for r in quarantine_rules]
                )
            )
            if quarantine_rules
            else F.array().cast("array<string>")
        )
        suite.check_columns(df.columns)
        flagged = self._persist(df.withColumn(FAILED_RULES, failed))
        rows, failed, counted = self._count_split(flagged, quarantine_rules)
        batch = flagged.drop(FAILED_RULES)
        results = self.validate(suite, batch)
        plan = self._pii_plan(table, batch, report, sample_rows)
        self._decide(suite, results, report)
        report.rows_in = rows
        if not report.blocked_by:
            self._reconcile(suite, quarantine_rules, results, counted)
            report.rows_quarantined = failed
        report.rows_passed = rows - report.rows_quarantined
        return CheckedBatch(table, flagged, report, suite, plan, results)

    def _check_table(self, table: str, run: JobRun) -> CheckedBatch:
        """Validate a whole table (e.g. silver before gold): its rules can block or warn only."""
        suite = self.suites[table]
        if suite.quarantines:
            raise ConfigError(
                f"{suite.source}: table {table} is checked as a whole before the next layer, "
                "so its rules can block or warn, not quarantine"
            )
        frame = self.lh.table(table)
        results = self.validate(suite, frame)
        report = GateReport(table, run.run_id, self.batch_date.isoformat())
        self._decide(suite, results, report)
        report.rows_in = report.rows_passed = next(
            (r.element_count for r in results if r.element_count is not None), None
        )
        return CheckedBatch(table, frame, report, suite, results=results)

    def _pii_plan(self, table: str, df: DataFrame, report: GateReport, sample_rows: int | None) -> dict:
        """Detect the PII columns of ``df`` and return how each is masked (also noted on the report)."""
        detection = self.policies.detection
        tags = {**tags_from_spark_schema(df.schema), **self.policies.for_table(table).tags}
        detected = detect_pii(
            df, detection.sample_rows if sample_rows is None else sample_rows, detection.min_match_ratio, tags
        )
        plan = self.masker.plan(table, detected, df.columns)
        report.pii_masked = {c: p.policy for c, p in plan.items()}
        return plan

    @staticmethod
    def _count_split(flagged: DataFrame, rules: list) -> tuple[int, int, dict[str, int]]:
        """Count the rows, the failing rows and each quarantine rule's failures (by rule name) in one
        job, the one that fills the batch's cache."""
        totals = flagged.agg(
            F.count(F.lit(1)),
            F.sum(F.when(F.size(FAILED_RULES) > 0, 1).otherwise(0)),
            *[F.sum(F.when(F.array_contains(FAILED_RULES, r.name), 1).otherwise(0)) for r in rules],
        ).first()
        counts = [int(value or 0) for value in totals]
        return counts[0], counts[1], {rule.name: count for rule, count in zip(rules, counts[2:])}

    @staticmethod
    def _reconcile(suite: Suite, rules: list, results: list[QualityResult], counted: dict[str, int]) -> None:
        """Check each quarantine rule's predicate count against GX's unexpected count."""
        by_name = {r.expectation: r for r in results}
        for rule in rules:
            expected = by_name[rule.name].unexpected_count
            if expected is not None and expected != counted[rule.name]:
                raise PipelineError(
                    f"quality gate {suite.table}: rule '{rule.name}' has {expected} unexpected rows in GX "
                    f"but its Spark predicate selects {counted[rule.name]}; the quarantine split would not "
                    "match the validation"
                )

    # Phase 2: write (nothing blocked) -------------------------------------------------

    def _admit(self, checked: CheckedBatch) -> DataFrame:
        """File a checked batch's report; return the rows that go on, PII masked."""
        if checked.suite is None:
            return self.masker.apply(checked.frame, checked.plan)
        passed = checked.frame
        if checked.suite.quarantines:
            passed = checked.frame.where(F.size(FAILED_RULES) == 0)
        self._file(checked.report)
        return self.masker.apply(passed.drop(FAILED_RULES), checked.plan)

    def _quarantine_rows(self, checked: CheckedBatch, run: JobRun) -> DataFrame:
        """The failing rows of a checked batch (PII masked) as ``quarantine.quality`` rows."""
        failing = self.masker.apply(checked.frame.where(F.size(FAILED_RULES) > 0), checked.plan)
        data_columns = [c for c in failing.columns if c != FAILED_RULES]
        return failing.select(
            F.lit(checked.table).alias("dataset"),
            F.col(FAILED_RULES)[0].alias("rule"),
            F.col(FAILED_RULES).alias("failed_rules"),
            F.to_json(F.struct(*data_columns)).alias("record"),
            F.lit(run.run_id).alias("run_id"),
            F.current_timestamp().alias("_quarantined_at"),
            F.lit(self.batch_date.isoformat()).cast("date").alias("_batch_date"),
        )

    def _write_quarantine(self, batches: Sequence[CheckedBatch], run: JobRun) -> None:
        """Replace this date's quarantined rows of the batches' tables with their failing rows, in one commit.

        Only tables with quarantine rules take part; the committed row count must equal the
        failing rows phase 1 counted."""
        batches = [b for b in batches if b.suite is not None and b.suite.quarantines]
        if not batches:
            return
        rows = reduce(DataFrame.unionByName, [self._quarantine_rows(b, run) for b in batches])
        tables = ", ".join(f"'{b.table}'" for b in batches)
        ref = self.lh.resolve(QUARANTINE_TABLE)
        failed = sum(b.report.rows_quarantined for b in batches)
        version = bulk.overwrite_where(
            self.lh.spark,
            ref,
            bulk.in_few_files(rows, failed),
            f"_batch_date = DATE'{self.batch_date.isoformat()}' AND dataset IN ({tables})",
            run.run_id,
        )
        committed = version.rows_written
        if committed != failed:
            raise PipelineError(
                f"quality gate {', '.join(b.table for b in batches)}: {failed} rows failed "
                f"but {committed} were committed to {QUARANTINE_TABLE}"
            )
        run.add_output(
            QUARANTINE_TABLE,
            format="delta",
            path=ref.uri,
            version=version.version,
            rows=committed,
            bytes=version.bytes_written,
            files=version.files_written,
            schema=schema_of(rows.schema),
        )
        run.rows_quarantined += committed

    def _admit_each(self, checked: dict[str, CheckedBatch], run: JobRun) -> Iterator[tuple[str, DataFrame]]:
        """Write the step's quarantine, then hand back each checked batch to write, in order; free its
        cache once the caller asks for the next."""
        self._write_quarantine(list(checked.values()), run)
        for name, batch in checked.items():
            yield name, self._admit(batch)
            if batch.suite is not None:
                self._unpersist(batch.frame)

    # Gates ------------------------------------------------------------------------------

    def gate(self, table: str, df: DataFrame, run: JobRun, sample_rows: int | None = None) -> DataFrame:
        """Gate one batch on its own (a batch bound for the layer after ``table``): check it, raise if it
        blocks, else write its quarantined rows and return the rows that go on, PII masked.

        The batch stays cached until :meth:`release`. ``sample_rows`` overrides the PII detection
        sample (0: names and tags only).
        """
        checked = self._check(table, df, run, sample_rows)
        self._record([checked], run)
        self._raise_if_blocked([checked.report])
        self._write_quarantine([checked], run)
        return self._admit(checked)

    def silver_gate(
        self, lh: Lakehouse, batches: dict[str, DataFrame], run: JobRun
    ) -> Iterator[tuple[str, DataFrame]]:
        """``build_silver``'s ``before_merge`` hook: check every source's batch as its bronze table.

        If any blocks, raises one :class:`QualityGateError` and nothing is written; otherwise
        hands back each source's passing rows (quarantine written, PII masked) for its MERGE.
        """
        sources = lh.settings.pipeline_definition().sources
        checked = dict(
            zip(
                batches,
                run_concurrently(
                    self.lh.spark,
                    [
                        partial(self._check, sources[name].bronze, batch, run)
                        for name, batch in batches.items()
                    ],
                    "quality-gate",
                ),
            )
        )
        self._record(list(checked.values()), run)
        self._raise_if_blocked([c.report for c in checked.values()])
        return self._admit_each(checked, run)

    def gold_gate(
        self, lh: Lakehouse, frames: dict[str, DataFrame], run: JobRun
    ) -> Iterator[tuple[str, DataFrame]]:
        """``build_gold``'s ``before_write`` hook: check the silver tables that have a suite (as whole
        tables: block or warn) and every gold frame (PII by column name and tags only).

        If any blocks, raises one :class:`QualityGateError` and nothing is written; otherwise
        hands back each gold frame's passing rows for its overwrite.
        """
        tables = self.layer_tables("silver")
        outcomes = run_concurrently(
            self.lh.spark,
            [partial(self._check_table, table, run) for table in tables]
            + [partial(self._check, name, frame, run, 0) for name, frame in frames.items()],
            "quality-gate",
        )
        inputs, checked = outcomes[: len(tables)], dict(zip(frames, outcomes[len(tables) :]))
        self._record(outcomes, run)
        self._raise_if_blocked([c.report for c in outcomes])
        for table in inputs:
            self._file(table.report)
        return self._admit_each(checked, run)

    def layer_tables(self, layer: str) -> list[str]:
        """The tables of ``layer`` that have a suite, in name order."""
        return sorted(t for t in self.suites if t.startswith(layer + "."))
