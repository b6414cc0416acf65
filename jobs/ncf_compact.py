"""spark-submit entry point: compact an NCF table (see `neurolake ncf compact --help`).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/ncf_compact.py silver.events --conf-file conf/cluster.yaml
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["ncf", "compact", *sys.argv[1:]]))
