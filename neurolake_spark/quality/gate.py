"""Quality gates: validate a batch with Great Expectations, then block, quarantine or warn.

One :class:`QualityGates` per job step holds the ephemeral GX context, the suites and the
PII masker. Its hooks plug into curate::

    with QualityGates(lh, batch_date) as gates:
        build_silver(lh, batch_date, run, before_merge=gates.silver_gate)

For each table with a suite, the gate caches the batch once, runs all of its rules in
one GX validation (``SUMMARY`` results without unexpected values: counts only, nothing
collected), records every outcome on the run, and then:

- **block**: a failed ``block`` rule (or a ``quarantine`` rule over its
  ``block_above_percent``) raises :class:`QualityGateError` before anything is written;
  the full report is in ``<warehouse>/_quality/reports/date=D/<table>.json``;
- **quarantine**: rows failing ``quarantine`` rules are split off with the rules' Spark
  predicates (``where(ok)`` / ``where(not ok)``), PII masked, and written to
  ``quarantine.quality`` (replacing that date and table), the others go on; the
  predicate counts must equal GX's, and rows in = rows passed + rows quarantined;
- **warn**: recorded, the step continues.

GX 1.24 on PySpark 4.2 classic sessions works as is (its Spark engine only needs
``pyspark.sql``); the GX datasource is created with ``persist=False`` because the gate
caches the batch itself and frees it when the table is done.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.demo_data import parse_date
from neurolake_spark.errors import ConfigError, PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.quality.pii import Masker, SecretSource, detect_pii, load_policies, tags_from_spark_schema
from neurolake_spark.quality.suites import Suite, load_suites
from neurolake_spark.runs import JobRun, QualityResult, schema_of

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "quarantine.quality"
FAILED_RULES = "_nl_failed_rules"
SUMMARY_COUNTS_ONLY = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


class QualityGateError(PipelineError):
    """A critical quality rule failed: the step stops before writing the table."""

    def __init__(self, message: str, report_path: Path | None = None):
        super().__init__(message)
        self.report_path = report_path


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

    def summary(self) -> str:
        """A readable multi-line report (no row values, so no PII)."""
        lines = [f"quality gate {self.table} ({self.batch_date}, run {self.run_id}): "
                 f"{'BLOCKED' if self.blocked_by else 'passed'}; rows in {self.rows_in}, "
                 f"passed {self.rows_passed}, quarantined {self.rows_quarantined}"]
        for result in self.results:
            mark = "ok  " if result["success"] else "FAIL"
            counts = (f"{result['unexpected_count']}/{result['element_count']} rows unexpected"
                      if result["unexpected_count"] is not None else f"observed {result['observed_value']}")
            lines.append(f"  {mark} {result['expectation']:<28} {result['action']:<10} {result['severity']:<8} {counts}")
        return "\n".join(lines)


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
        self.suites = load_suites(conf_relative(lh.settings, quality.suites), known_tables=list(definition.tables))
        self.policies = load_policies(conf_relative(lh.settings, quality.pii_policies))
        self.masker = Masker(self.policies, SecretSource(quality))
        self._context = None
        self._validations: dict[str, Any] = {}
        self._cached: list[DataFrame] = []

    def __enter__(self) -> "QualityGates":
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
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._context = gx.get_context(mode="ephemeral")
            self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._datasource = self._context.data_sources.add_spark(name="neurolake", persist=False)
        return self._context

    def _validation_of(self, suite: Suite):
        if suite.table not in self._validations:
            import great_expectations as gx

            context = self._gx_context()
            batch = self._datasource.add_dataframe_asset(name=suite.table).add_batch_definition_whole_dataframe(
                suite.table)
            gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.table))
            for rule in suite.rules:
                expectation = rule.expectation(self.batch_date)
                expectation.meta = {"rule": rule.name}
                gx_suite.add_expectation(expectation)
            self._validations[suite.table] = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite))
        return self._validations[suite.table]

    def validate(self, suite: Suite, df: DataFrame) -> list[QualityResult]:
        """Run every rule of ``suite`` on ``df`` in one GX validation; results in rule order."""
        suite.check_columns(df.columns)
        outcome = self._validation_of(suite).run(batch_parameters={"dataframe": df},
                                                 result_format=SUMMARY_COUNTS_ONLY)
        by_rule = {r.expectation_config.meta["rule"]: r for r in outcome.results}
        results = []
        for rule in suite.rules:
            gx_result = by_rule[rule.name]
            details = gx_result.result or {}
            observed = details.get("observed_value")
            error = _exception_message(gx_result.exception_info)
            if error:
                observed = f"not evaluated: {error}"
            results.append(QualityResult(
                dataset=suite.table, expectation=rule.name, success=bool(gx_result.success),
                severity=rule.severity, action=rule.action, column=", ".join(rule.columns) or None,
                observed_value=_jsonable(observed), unexpected_count=details.get("unexpected_count"),
                element_count=details.get("element_count", observed if rule.type == "row_count_between" else None),
            ))
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
                counts = (f"{result.unexpected_count} of {result.element_count} rows unexpected"
                          if rule.row_level else f"observed {result.observed_value}")
                reasons.append(f"rule '{rule.name}' ({rule.type}) failed: {counts}")
            elif rule.block_above_percent is not None and result.element_count:
                percent = 100.0 * result.unexpected_count / result.element_count
                if percent > rule.block_above_percent:
                    reasons.append(
                        f"rule '{rule.name}' ({rule.type}) failed on {result.unexpected_count} of "
                        f"{result.element_count} rows ({percent:.2f}% > block_above_percent {rule.block_above_percent})"
                    )
        return reasons

    def _write_report(self, report: GateReport) -> Path:
        path = self.reports_dir / f"{report.table}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n", encoding="utf-8")
        return path

    def _finish(self, report: GateReport, results: list[QualityResult], run: JobRun) -> None:
        """Record results on the run, write the report, and raise if a critical rule failed."""
        run.record_quality(results)
        report.results = [asdict(r) for r in results]
        path = self._write_report(report)
        if report.blocked_by:
            log.error("%s", report.summary())
            more = f" (and {len(report.blocked_by) - 1} more)" if len(report.blocked_by) > 1 else ""
            raise QualityGateError(
                f"quality gate blocked {report.table}: {report.blocked_by[0]}{more}; report: {path}", path)
        log.info("%s", report.summary())

    # Gates ------------------------------------------------------------------------------

    def _cache(self, df: DataFrame) -> DataFrame:
        self.release()
        cached = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._cached.append(cached)
        return cached

    def gate(self, table: str, df: DataFrame, run: JobRun, sample_rows: int | None = None) -> DataFrame:
        """Validate ``df`` (a batch bound for the layer after ``table``), act on the results,
        and return the rows that go on, PII masked.

        ``sample_rows`` overrides the PII detection sample (0: names and tags only).
        """
        suite = self.suites.get(table)
        report = GateReport(table, run.run_id, self.batch_date.isoformat())
        if suite is None:
            return self.masker.apply(df, self._pii_plan(table, df, run, report, sample_rows))

        quarantine_rules = [r for r in suite.rules if r.action == "quarantine"]
        failed = F.array_compact(F.array(*[
            F.when(~F.coalesce(r.passes(), F.lit(False)), F.lit(r.name)) for r in quarantine_rules
        ])) if quarantine_rules else F.array().cast("array<string>")
        suite.check_columns(df.columns)
        flagged = self._cache(df.withColumn(FAILED_RULES, failed))
        batch = flagged.drop(FAILED_RULES)
        plan = self._pii_plan(table, batch, run, report, sample_rows)
        results = self.validate(suite, batch)
        report.blocked_by = self._blocking(suite, results)
        if report.blocked_by or not quarantine_rules:
            report.rows_in = report.rows_passed = next(
                (r.element_count for r in results if r.element_count is not None), None)
            self._finish(report, results, run)
            return self.masker.apply(batch, plan)

        self._reconcile(suite, quarantine_rules, results, flagged, report)
        quarantined = self._write_quarantine(table, flagged, plan, report, run)
        if quarantined != report.rows_quarantined:
            raise PipelineError(f"quality gate {table}: {report.rows_quarantined} rows failed but "
                                f"{quarantined} were committed to {QUARANTINE_TABLE}")
        self._finish(report, results, run)
        passed = flagged.where(F.size(FAILED_RULES) == 0).drop(FAILED_RULES)
        return self.masker.apply(passed, plan)

    def _pii_plan(self, table: str, df: DataFrame, run: JobRun, report: GateReport,
                  sample_rows: int | None) -> dict:
        """Detect the PII columns of ``df`` and return how each is masked (also noted on the run)."""
        detection = self.policies.detection
        tags = {**tags_from_spark_schema(df.schema), **self.policies.for_table(table).tags}
        detected = detect_pii(df, detection.sample_rows if sample_rows is None else sample_rows,
                              detection.min_match_ratio, tags)
        plan = self.masker.plan(table, detected, df.columns)
        report.pii_masked = {c: p.policy for c, p in plan.items()}
        if plan:
            run.facts.setdefault("pii_masked", {})[table] = dict(report.pii_masked)
        return plan

    def _reconcile(self, suite: Suite, rules: list, results: list[QualityResult], flagged: DataFrame,
                   report: GateReport) -> None:
        """Count the split with the predicates and check them against GX's counts."""
        totals = flagged.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.when(F.size(FAILED_RULES) > 0, 1).otherwise(0)).alias("failed"),
            *[F.sum(F.when(F.array_contains(FAILED_RULES, r.name), 1).otherwise(0)).alias(r.name) for r in rules],
        ).first()
        report.rows_in, report.rows_quarantined = int(totals["rows"]), int(totals["failed"] or 0)
        report.rows_passed = report.rows_in - report.rows_quarantined
        by_name = {r.expectation: r for r in results}
        for rule in rules:
            expected = by_name[rule.name].unexpected_count
            counted = int(totals[rule.name] or 0)
            if expected is not None and expected != counted:
                raise PipelineError(
                    f"quality gate {suite.table}: rule '{rule.name}' has {expected} unexpected rows in GX but its "
                    f"Spark predicate selects {counted}; the quarantine split would not match the validation"
                )

    def _write_quarantine(self, table: str, flagged: DataFrame, plan: dict, report: GateReport,
                          run: JobRun) -> int:
        """Replace this date's quarantined rows of ``table`` with the failing rows (PII masked)."""
        failing = self.masker.apply(flagged.where(F.size(FAILED_RULES) > 0), plan)
        data_columns = [c for c in failing.columns if c != FAILED_RULES]
        rows = failing.select(
            F.lit(table).alias("dataset"),
            F.col(FAILED_RULES)[0].alias("rule"),
            F.col(FAILED_RULES).alias("failed_rules"),
            F.to_json(F.struct(*data_columns)).alias("record"),
            F.lit(run.run_id).alias("run_id"),
            F.current_timestamp().alias("_quarantined_at"),
            F.lit(self.batch_date.isoformat()).cast("date").alias("_batch_date"),
        )
        ref = self.lh.resolve(QUARANTINE_TABLE)
        version = bulk.overwrite_where(
            self.lh.spark, ref, rows,
            f"_batch_date = DATE'{self.batch_date.isoformat()}' AND dataset = '{table}'", run.run_id,
        )
        committed = version.rows_written
        run.add_output(QUARANTINE_TABLE, format="delta", path=ref.uri, version=version.version, rows=committed,
                       bytes=version.bytes_written, files=version.files_written, schema=schema_of(rows.schema))
        run.rows_quarantined += committed
        return committed

    def silver_gate(self, lh: Lakehouse, source: str, batch: DataFrame, run: JobRun) -> DataFrame:
        """``build_silver``'s ``before_merge`` hook: gate a source's batch as its bronze table."""
        return self.gate(lh.settings.pipeline_definition().sources[source].bronze, batch, run)

    def gold_gate(self, lh: Lakehouse, table: str, frame: DataFrame, run: JobRun) -> DataFrame:
        """``build_gold``'s ``before_write`` hook: gate a gold frame (PII by column name and tags only)."""
        return self.gate(table, frame, run, sample_rows=0)

    def check_tables(self, tables: list[str], run: JobRun) -> None:
        """Validate whole tables (e.g. silver before gold): their rules can block or warn only."""
        for table in tables:
            suite = self.suites.get(table)
            if suite is None:
                continue
            if suite.quarantines:
                raise ConfigError(f"{suite.source}: table {table} is checked as a whole before the next layer, "
                                  "so its rules can block or warn, not quarantine")
            frame = self._cache(self.lh.table(table))
            results = self.validate(suite, frame)
            report = GateReport(table, run.run_id, self.batch_date.isoformat())
            report.blocked_by = self._blocking(suite, results)
            report.rows_in = report.rows_passed = next(
                (r.element_count for r in results if r.element_count is not None), None)
            self._finish(report, results, run)
        self.release()

    def layer_tables(self, layer: str) -> list[str]:
        """The tables of ``layer`` that have a suite, in name order."""
        return sorted(t for t in self.suites if t.startswith(layer + "."))
