"""The nightly pipeline: ingest -> silver -> gold -> maintenance, each step in a JobRun.

Example::

    lh = Lakehouse.open("conf/local.yaml")
    result = run_nightly(lh, "2026-11-24")
    print(format_summary(result))

Every step is safe to re-run for the same date; ``run_step`` runs one of them (what
``jobs/<step>.py`` and the Airflow DAG call). A nightly, or a step run on its own, holds the
warehouse's lock of its date (:mod:`neurolake_spark.locks`): a second one for the same date
fails fast, naming the run that holds it. The lock's record lists the runs open under it, so
that after a crash the rerun that takes the lock over reports them as aborted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from neurolake_spark.curate import build_gold, build_silver
from neurolake_spark.errors import PipelineError
from neurolake_spark.ingest import ingest_all
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import HeldLocks, run_lock
from neurolake_spark.maintenance import nightly_maintenance
from neurolake_spark.parsing import parse_date
from neurolake_spark.quality import QualityGates
from neurolake_spark.quality.gate import start_importing_gx
from neurolake_spark.runs import JobRun


def _ingest(lh: Lakehouse, batch_date: str, run: JobRun) -> None:
    ingest_all(lh, batch_date, run)


def _silver(lh: Lakehouse, batch_date: str, run: JobRun) -> None:
    if not lh.settings.quality.enabled:
        build_silver(lh, batch_date, run)
        return
    with QualityGates(lh, batch_date) as gates:
        build_silver(lh, batch_date, run, before_merge=gates.silver_gate)


def _gold(lh: Lakehouse, batch_date: str, run: JobRun) -> None:
    if not lh.settings.quality.enabled:
        build_gold(lh, run)
        return
    with QualityGates(lh, batch_date) as gates:
        build_gold(lh, run, before_write=gates.gold_gate)


STEPS: dict[str, Callable[[Lakehouse, str, JobRun], None]] = {
    "ingest": _ingest,
    "silver": _silver,
    "gold": _gold,
    "maintenance": nightly_maintenance,
}
GATED_STEPS = ("silver", "gold")


def _start(lh: Lakehouse, steps: list[str]) -> None:
    """Start Spark before the run's clock starts; when one of ``steps`` is gated, import Great
    Expectations meanwhile, in the background."""
    if lh.settings.quality.enabled and set(steps) & set(GATED_STEPS):
        start_importing_gx()
    lh.spark  # noqa: B018 (builds the session)


@dataclass
class NightlyResult:
    """The nightly run and its step runs, in order."""

    run: JobRun
    steps: list[JobRun] = field(default_factory=list)


def run_step(
    lh: Lakehouse,
    step: str,
    batch_date: str,
    parent: JobRun | None = None,
    locks: HeldLocks | None = None,
) -> JobRun:
    """Run one pipeline step for ``batch_date`` inside its own JobRun and return the run.

    A step on its own takes the date's lock. A step of a nightly (``parent``) runs under the
    nightly's ``locks``, whose records list the step as open while it runs (so that if the
    process dies, the run that takes the lock over reports the step as aborted)."""
    batch_date = parse_date(batch_date).isoformat()
    if step not in STEPS:
        raise PipelineError(f"unknown step '{step}' (steps: {', '.join(STEPS)})")
    run = lh.run(step, run_date=batch_date, parent=parent)
    if locks is not None:
        lock = locks.running(run)
    elif parent is not None:
        lock = nullcontext()
    else:
        lock = run_lock(lh.settings, f"step {step} for {batch_date}", run, dates=[batch_date])
    with lock:
        _start(lh, [step])
        with run:
            STEPS[step](lh, batch_date, run)
    return run


def run_ingest(lh: Lakehouse, batch_date: str, sources: list[str]) -> JobRun:
    """The ingest step of ``batch_date`` for ``sources`` only (what an upload with ``?ingest=true``
    runs): the same landing, quarantine and counts as the step, under the date's lock."""
    batch_date = parse_date(batch_date).isoformat()
    run = lh.run("ingest", run_date=batch_date)
    what = f"an ingest of {', '.join(sources)} for {batch_date}"
    with run_lock(lh.settings, what, run.run_id, dates=[batch_date]):
        _start(lh, ["ingest"])
        with run:
            ingest_all(lh, batch_date, run, sources=sources)
    return run


def run_nightly(lh: Lakehouse, batch_date: str, steps: list[str] | None = None) -> NightlyResult:
    """Run the nightly chain for ``batch_date``; the nightly run is the parent of each step."""
    batch_date = parse_date(batch_date).isoformat()
    steps = steps or list(STEPS)
    nightly = lh.run("nightly", run_date=batch_date)
    with run_lock(lh.settings, f"a nightly for {batch_date}", nightly, dates=[batch_date]) as locks:
        _start(lh, steps)
        with nightly:
            result = NightlyResult(nightly)
            for step in steps:
                step_run = run_step(lh, step, batch_date, parent=nightly, locks=locks)
                result.steps.append(step_run)
                nightly.rows_quarantined += step_run.rows_quarantined
    return result


def format_summary(result: NightlyResult) -> str:
    """A short human summary: tables written with versions and rows, quarantine, duration."""
    run = result.run
    lines = [
        f"NeuroLake nightly {run.run_date}: {run.status} in {run.duration_seconds:.1f}s (run {run.run_id})"
    ]
    latest: dict[str, tuple[int | None, int | None]] = {}
    for step in result.steps:
        for output in step.outputs:
            version, rows = latest.get(output.name, (None, None))
            latest[output.name] = (output.version, output.rows if output.rows is not None else rows)
    width = max((len(n) for n in latest), default=10)
    lines.append(f"  {'table'.ljust(width)}  version  rows")
    for name in sorted(latest):
        version, rows = latest[name]
        lines.append(f"  {name.ljust(width)}  {str(version).rjust(7)}  {'' if rows is None else f'{rows:,}'}")
    read = sum(s.rows_in for s in result.steps if s.job_name == "ingest")
    lines.append(f"  ingested {read:,} raw rows; quarantined {run.rows_quarantined:,}")
    for step in result.steps:
        lines.append(f"  step {step.job_name:<12} {step.status:<8} {step.duration_seconds:6.1f}s")
    return "\n".join(lines)
