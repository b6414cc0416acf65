"""spark-submit entry point: compact every table (only the date's partition of partitioned tables).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/compact.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["table", "optimize", "--all", *sys.argv[1:]]))
