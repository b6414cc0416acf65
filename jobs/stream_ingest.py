"""spark-submit entry point: stream new raw files of a source into bronze (exactly once).

    spark-submit --jars "$(neurolake jars)" --py-files dist/neurolake_spark-*.whl \
        jobs/stream_ingest.py --source orders --conf-file conf/cluster.yaml [--available-now]
"""

import sys

from neurolake_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["stream", *sys.argv[1:]]))
