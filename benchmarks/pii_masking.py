"""The cost of PII masking on one night's bronze batch (the masking step of the silver gate).

Generates one day of demo data at ``--scale`` into a temporary warehouse, lands it in bronze
(the ingest step), then for every bronze table that has PII (``conf/pii.yaml`` and
detection) forces, with Spark's ``noop`` sink, the night's batch read as is (the baseline)
and read with its PII masked (``Masker.apply``); the difference is the masking. Each time
is the median of ``--repeat`` runs after one warm-up, the frames alternating.

``--against REV`` also times the masking of ``neurolake_spark/quality/pii.py`` as it was at
git revision ``REV`` (loaded from ``git show``) on the same batch, and counts the rows whose
masked values differ between the two (0: the same hashes and tokens). A throwaway PII salt
and token key are generated for the run.

    .venv/bin/python benchmarks/pii_masking.py --scale 1
    .venv/bin/python benchmarks/pii_masking.py --scale 1 --repeat 9 --against be2e9e8
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "local.yaml"
PII_MODULE = "neurolake_spark/quality/pii.py"


def _module_at(revision: str, folder: Path):
    """``quality/pii.py`` as it was at ``revision``, imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{PII_MODULE}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "pii_at_revision.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("pii_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _masked(pii, lh, name: str, batch, found):
    masker = pii.Masker(
        pii.load_policies(lh.settings.quality.pii_policies), pii.SecretSource(lh.settings.quality)
    )
    detected = {c: pii.Detection(d.column, d.pii_class, d.evidence) for c, d in found.items()}
    plan = masker.plan(name, detected, batch.columns)
    return plan, (masker.apply(batch, plan) if plan else None)


def _time_alternating(frames: dict, repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {label: [] for label in frames}
    for frame in frames.values():
        frame.write.format("noop").mode("overwrite").save()
    for run in range(repeat):
        for label in list(frames) if run % 2 == 0 else list(reversed(frames)):
            started = time.perf_counter()
            frames[label].write.format("noop").mode("overwrite").save()
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--date", default="2026-11-24")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--against", metavar="REV", help="also time quality/pii.py as of this git revision")
    args = parser.parse_args()
    os.environ["NEUROLAKE_PII_SALT"] = secrets.token_hex(32)
    os.environ["NEUROLAKE_TOKEN_KEY"] = secrets.token_hex(32)

    from pyspark.sql import functions as F

    from neurolake_spark.demo_data import generate_day
    from neurolake_spark.lakehouse import Lakehouse
    from neurolake_spark.pipeline import run_step
    from neurolake_spark.quality import pii

    with tempfile.TemporaryDirectory(prefix="pii-bench-") as folder:
        earlier = _module_at(args.against, Path(folder)) if args.against else None
        lh = Lakehouse.open(CONF, overrides={"storage.warehouse": folder, "lineage.enabled": False})
        generate_day(lh.settings.raw_dir, args.date, scale=args.scale, seed=lh.settings.generator.seed)
        run_step(lh, "ingest", args.date)
        detection = pii.load_policies(lh.settings.quality.pii_policies).detection
        print(f"PII masking, scale {args.scale}, {args.date}, median of {args.repeat} runs (seconds)")
        for name in lh.tables.names("bronze"):
            batch = lh.table(name).where(F.col("_batch_date") == args.date)
            found = pii.detect_pii(batch, detection.sample_rows, detection.min_match_ratio)
            plan, masked = _masked(pii, lh, name, batch, found)
            if masked is None:
                continue
            frames = {"read": batch, "masked": masked}
            if earlier:
                frames[f"masked at {args.against}"] = _masked(earlier, lh, name, batch, found)[1]
            medians = _time_alternating(frames, args.repeat)
            shown = ", ".join(f"{c}={p.policy}" for c, p in plan.items())
            print(f"{name}: {batch.count():,} rows; {shown}")
            for label, seconds in medians.items():
                print(f"  {label:<24}{seconds:7.3f}  masking {seconds - medians['read']:+.3f}")
            if earlier:
                other = frames[f"masked at {args.against}"]
                differing = masked.exceptAll(other).count() + other.exceptAll(masked).count()
                print(f"  rows whose masked values differ from {args.against}: {differing}")
        lh.spark.stop()


if __name__ == "__main__":
    main()
