"""spark-submit entry point: Compact what the night wrote and vacuum every table with the configured
retention.

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/maintenance.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["step", "maintenance", *sys.argv[1:]]))
