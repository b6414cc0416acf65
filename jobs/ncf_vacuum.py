"""spark-submit entry point: vacuum an NCF table (see `neurolake ncf vacuum --help`).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/ncf_vacuum.py silver.events --conf-file conf/cluster.yaml
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ncf", "vacuum", *sys.argv[1:]]))
