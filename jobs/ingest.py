"""spark-submit entry point: Land the day's raw files in bronze Delta (malformed rows to quarantine.ingest).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/ingest.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["step", "ingest", *sys.argv[1:]]))
