"""spark-submit entry point: the whole nightly chain (ingest, silver, gold, maintenance).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/nightly.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["nightly", *sys.argv[1:]]))
