"""``python -m neurolake_spark.cli`` is the ``neurolake`` command."""

import sys

from neurolake_spark.cli import main

sys.exit(main())
