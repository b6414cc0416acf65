"""spark-submit entry point: back up every table and the catalog into a new folder (with a manifest).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/backup.py --conf-file conf/cluster.yaml --date 2026-11-24 --to /backups/2026-11-24/run1
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["backup", "--all", *sys.argv[1:]]))
