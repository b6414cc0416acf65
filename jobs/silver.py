"""spark-submit entry point: Apply the day's bronze batch to silver (gate, dedup, PII masking, MERGE by
business key).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/silver.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["step", "silver", *sys.argv[1:]]))
