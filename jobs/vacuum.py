"""spark-submit entry point: vacuum every table with the configured retention
(maintenance.vacuum_retention_hours).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/vacuum.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["table", "vacuum", "--all", *sys.argv[1:]]))
