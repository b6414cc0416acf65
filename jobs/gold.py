"""spark-submit entry point: Rebuild the gold tables from silver (after the silver->gold gate).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/gold.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["step", "gold", *sys.argv[1:]]))
