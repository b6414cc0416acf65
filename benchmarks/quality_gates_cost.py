"""What the quality gates add to the nightly pipeline's time.

Generates one day of demo data at ``--scale`` (once, shared), then runs the nightly
pipeline for it with gates off and with gates on, each on a fresh warehouse in a fresh
process (a fresh Spark JVM, so neither run inherits the other's warm-up), and prints the
per-step times and the ratio. A throwaway PII salt and token key are generated for the run.

    .venv/bin/python benchmarks/quality_gates_cost.py --scale 1
    .venv/bin/python benchmarks/quality_gates_cost.py --scale 1 --days 2026-11-23 2026-11-24

With several days, each run processes them in order on its warehouse: the times add up,
and each night's own ratio is printed too (the first night builds the silver tables, later
nights MERGE into them, as a scheduled nightly does).
With ``--repeat N`` the pair runs N times, alternating which mode goes first, and the
medians are printed (on the 2-core VM one pair's ratio varied from +14 % to +37 %). Each
run's CPU time over its nights (this process and its Spark JVM) is printed too: it varies
less than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "local.yaml"


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and the children it still runs (the Spark JVM; Linux)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_mode(raw: Path, warehouse: Path, days: list[str], gates: bool) -> dict:
    """Run the nightly for ``days`` in this process; return step times and the nights' CPU time (s)."""
    from neurolake_spark.lakehouse import Lakehouse
    from neurolake_spark.pipeline import run_nightly

    lh = Lakehouse.open(
        CONF,
        overrides={
            "storage.warehouse": str(warehouse),
            "storage.raw": str(raw),
            "quality.enabled": gates,
        },
    )
    lh.spark  # noqa: B018 - start Spark before the clock: its start-up is not the gates' cost
    cpu_before = _cpu_seconds()
    steps: dict[str, float] = {}
    nights: dict[str, float] = {}
    for day in days:
        started = time.perf_counter()
        result = run_nightly(lh, day)
        nights[day] = time.perf_counter() - started
        for step in result.steps:
            steps[step.job_name] = steps.get(step.job_name, 0.0) + step.duration_seconds
    return {
        "gates": gates,
        "total": sum(nights.values()),
        "steps": steps,
        "nights": nights,
        "cpu": _cpu_seconds() - cpu_before,
    }


def _median_run(runs: list[dict]) -> dict:
    """The median total, of each step and of each night over ``runs``."""
    return {
        "total": statistics.median(r["total"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "steps": {
            step: statistics.median(r["steps"].get(step, 0.0) for r in runs) for step in runs[0]["steps"]
        },
        "nights": {day: statistics.median(r["nights"][day] for r in runs) for day in runs[0]["nights"]},
    }


def _added(off: float, on: float) -> str:
    return f"{on - off:.1f}s = {100 * (on / off - 1):.1f}% (ratio {on / off:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", nargs="+", default=["2026-11-24"])
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the off/on pair this many times; print medians"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where raw data and warehouses go (default: a temp dir)"
    )
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(run_mode(args.raw, args.warehouse, args.days, args.child == "on")))
        return 0

    from neurolake_spark.demo_data import generate_day

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="quality-gates-cost-"))
    raw = workdir / "raw"
    for day in args.days:
        generate_day(raw, day, scale=args.scale)
    env = {
        **os.environ,
        "NEUROLAKE_PII_SALT": secrets.token_hex(16),
        "NEUROLAKE_TOKEN_KEY": secrets.token_hex(16),
    }
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for attempt in range(args.repeat):
        for mode in ("off", "on") if attempt % 2 == 0 else ("on", "off"):
            warehouse = workdir / f"warehouse-{mode}"
            shutil.rmtree(warehouse, ignore_errors=True)
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--raw",
                str(raw),
                "--warehouse",
                str(warehouse),
                "--days",
                *args.days,
            ]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            runs[mode].append(json.loads(output.strip().splitlines()[-1]))
            print(
                f"run {attempt + 1} gates {mode}: {runs[mode][-1]['total']:.1f}s, "
                f"CPU {runs[mode][-1]['cpu']:.1f}s",
                flush=True,
            )
    off, on = (_median_run(runs[mode]) for mode in ("off", "on"))
    label = f", median of {args.repeat}" if args.repeat > 1 else ""
    print(f"scale {args.scale}, days {' '.join(args.days)}{label}")
    print(f"{'step':<12} {'gates off':>10} {'gates on':>10}")
    for step in off["steps"]:
        print(f"{step:<12} {off['steps'][step]:>9.1f}s {on['steps'].get(step, 0.0):>9.1f}s")
    print(f"{'total':<12} {off['total']:>9.1f}s {on['total']:>9.1f}s")
    if len(args.days) > 1:
        for day in args.days:
            print(
                f"night {day}: {off['nights'][day]:.1f}s -> {on['nights'][day]:.1f}s, gates add "
                f"{_added(off['nights'][day], on['nights'][day])}"
            )
    print(f"gates add {_added(off['total'], on['total'])}")
    print(
        "CPU of the nights (this process and its Spark JVM): "
        f"{off['cpu']:.1f}s -> {on['cpu']:.1f}s, gates add "
        f"{_added(off['cpu'], on['cpu'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
