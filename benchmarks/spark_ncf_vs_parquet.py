"""Benchmark: the Spark ``ncf`` source against Spark's native Parquet and Delta, same session and data.

Dataset (deterministic, default 1 000 000 rows): ``id`` (sorted, the NCF sort key),
``user_id``, ``amount`` (double), ``country`` (30 values), ``ts`` (timestamp).

Measured, each the median of ``--repeat`` runs, printed with NCF/other ratios:

* write: ``df.write`` of the cached frame (NCF vs Parquet), target <= 2.0x
* full scan: read everything into the ``noop`` sink (NCF vs Parquet), target <= 1.3x; and, to
  show what any Python data source pays, NCF vs a minimal Python data source that reads the
  same Parquet files with pyarrow (one task per file, batches as pyarrow makes them)
* selective filter on the sort key (0.1 % of rows) into ``noop`` (NCF vs Parquet), target <= 1.0x
* delete 1 % of rows, update 1 % of rows (a key range), NCF (``ncf_datasource.spark.operations``)
  vs Delta (``DeltaTable.delete/update``), each on a freshly written table, target <= 1.0x
* compaction of 1 000 small files (NCF ``compact`` vs Delta ``OPTIMIZE``)

Run: ``.venv/bin/python benchmarks/spark_ncf_vs_parquet.py [--rows N] [--repeat R] [--only scan,filter]
[--out DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition

MEASURES = ("write", "scan", "filter", "delete", "update", "compact")


class ParquetFile(InputPartition):
    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


class PyArrowParquetReader(DataSourceReader):
    def __init__(self, folder: str):
        self.folder = folder

    def partitions(self):
        return [ParquetFile(str(p)) for p in sorted(Path(self.folder).glob("*.parquet"))]

    def read(self, partition):
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = pa.schema(
            [
                ("id", pa.int64()),
                ("user_id", pa.int64()),
                ("amount", pa.float64()),
                ("country", pa.string()),
                ("ts", pa.timestamp("us", tz="UTC")),
            ]
        )
        for batch in pq.ParquetFile(partition.path).iter_batches(batch_size=1 << 18):
            yield batch.cast(target)


class PyArrowParquetSource(DataSource):
    """The smallest Python data source over the same data: the floor any Python source pays."""

    @classmethod
    def name(cls) -> str:
        return "pyarrow_parquet"

    def schema(self) -> str:
        return "id long, user_id long, amount double, country string, ts timestamp"

    def reader(self, schema):
        return PyArrowParquetReader(self.options["path"])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_of(repeat: int, prepare, run) -> float:
    times = []
    for _ in range(repeat):
        prepare()
        times.append(timed(run))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument(
        "--only", default=",".join(MEASURES), help=f"comma-separated subset of {','.join(MEASURES)}"
    )
    parser.add_argument("--out", help="working folder (default: a temporary one)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not only <= set(MEASURES):
        parser.error(f"--only takes {','.join(MEASURES)}, got {args.only}")

    from delta.tables import DeltaTable

    from ncf_datasource.spark import operations
    from ncf_datasource.table import NCFTable, compact
    from neurolake_spark.config import load_settings
    from neurolake_spark.session import build_spark

    work = Path(args.out or tempfile.mkdtemp(prefix="spark_ncf_bench_"))
    spark = build_spark(
        load_settings(None, {"storage.warehouse": str(work / "warehouse"), "spark.log_level": "ERROR"})
    )
    n = args.rows
    data = (
        spark.range(0, n, numPartitions=4)
        .select(
            "id",
            (F.col("id") * 7919 % 200_000).alias("user_id"),
            ((F.col("id") * 104729 % 100_000) / 100).alias("amount"),
            F.concat(F.lit("C"), (F.col("id") % 30).cast("string")).alias("country"),
            (
                F.lit("2026-01-01 00:00:00").cast("timestamp") + F.make_interval(secs=F.col("id") % 86400)
            ).alias("ts"),
        )
        .cache()
    )
    data.count()
    paths = {name: str(work / name) for name in ("parquet", "ncf", "delta", "ncf_edit")}

    def clear(path: str):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    results: list[tuple[str, float, float, str, str]] = []

    write_parquet = lambda: data.write.mode("overwrite").parquet(paths["parquet"])  # noqa: E731
    write_ncf = lambda: data.write.format("ncf").mode("append").option("sortKey", "id").save(paths["ncf"])  # noqa: E731
    if "write" in only:
        results.append(
            (
                "write",
                median_of(args.repeat, clear(paths["ncf"]), write_ncf),
                median_of(args.repeat, clear(paths["parquet"]), write_parquet),
                "Parquet",
                "<= 2.0",
            )
        )
    elif {"scan", "filter"} & only:
        write_parquet()
        write_ncf()

    def noop(df):
        return lambda: df.write.format("noop").mode("overwrite").save()

    def scan(df):
        return median_of(args.repeat, lambda: None, noop(df))

    if "scan" in only:
        spark.dataSource.register(PyArrowParquetSource)
        ncf_scan = scan(spark.read.format("ncf").load(paths["ncf"]))
        results.append(
            ("full scan -> noop", ncf_scan, scan(spark.read.parquet(paths["parquet"])), "Parquet", "<= 1.3")
        )
        results.append(
            (
                "full scan -> noop",
                ncf_scan,
                scan(spark.read.format("pyarrow_parquet").load(paths["parquet"])),
                "Python source",
                "-",
            )
        )
    if "filter" in only:
        lo = n // 2
        selective = f"id BETWEEN {lo} AND {lo + n // 1000}"
        results.append(
            (
                "filter on sort key -> noop",
                scan(spark.read.format("ncf").load(paths["ncf"]).where(selective)),
                scan(spark.read.parquet(paths["parquet"]).where(selective)),
                "Parquet",
                "<= 1.0",
            )
        )

    one_percent_text = f"id BETWEEN {n // 3} AND {n // 3 + n // 100 - 1}"
    one_percent = F.col("id").between(n // 3, n // 3 + n // 100 - 1)

    def fresh_delta():
        shutil.rmtree(paths["delta"], ignore_errors=True)
        data.write.format("delta").save(paths["delta"])

    def fresh_ncf():
        shutil.rmtree(paths["ncf_edit"], ignore_errors=True)
        data.write.format("ncf").mode("append").option("sortKey", "id").save(paths["ncf_edit"])

    if "delete" in only:
        delete_delta = median_of(
            args.repeat, fresh_delta, lambda: DeltaTable.forPath(spark, paths["delta"]).delete(one_percent)
        )
        delete_ncf = median_of(
            args.repeat,
            fresh_ncf,
            lambda: operations.delete(spark, paths["ncf_edit"], one_percent, one_percent_text),
        )
        results.append(("delete 1% of rows", delete_ncf, delete_delta, "Delta", "<= 1.0"))
    if "update" in only:
        update_delta = median_of(
            args.repeat,
            fresh_delta,
            lambda: DeltaTable.forPath(spark, paths["delta"]).update(
                one_percent, {"amount": F.col("amount") * 2}
            ),
        )
        update_ncf = median_of(
            args.repeat,
            fresh_ncf,
            lambda: operations.update(
                spark, paths["ncf_edit"], one_percent, {"amount": F.col("amount") * 2}, one_percent_text
            ),
        )
        results.append(("update 1% of rows", update_ncf, update_delta, "Delta", "<= 1.0"))

    if "compact" in only:
        small = data.limit(100_000).repartition(args.small_files)

        def small_ncf():
            shutil.rmtree(paths["ncf_edit"], ignore_errors=True)
            small.write.format("ncf").mode("append").save(paths["ncf_edit"])

        def small_delta():
            shutil.rmtree(paths["delta"], ignore_errors=True)
            small.write.format("delta").save(paths["delta"])

        compact_ncf = median_of(
            args.repeat, small_ncf, lambda: compact(NCFTable(paths["ncf_edit"]), target_file_mb=128)
        )
        compact_delta = median_of(
            args.repeat,
            small_delta,
            lambda: DeltaTable.forPath(spark, paths["delta"]).optimize().executeCompaction(),
        )
        assert len(NCFTable(paths["ncf_edit"]).snapshot().files) == 1
        results.append(
            (f"compact {args.small_files} small files", compact_ncf, compact_delta, "Delta OPTIMIZE", "-")
        )

    print(f"rows={n} repeat={args.repeat} (medians, seconds)")
    print(f"{'measure':<30} {'NCF':>8} {'other':>8} {'vs':<15} {'ratio':>6}  target")
    for name, ncf_s, other_s, other, target in results:
        print(f"{name:<30} {ncf_s:8.2f} {other_s:8.2f} {other:<15} {ncf_s / other_s:6.2f}  {target}")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
