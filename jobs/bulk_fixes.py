"""spark-submit entry point: apply the day's bulk fixes (updates, deletes, erasures) from <raw>/fixes/date=D/.

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/bulk_fixes.py --conf-file conf/cluster.yaml --date 2026-11-24
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["fixes", *sys.argv[1:]]))
