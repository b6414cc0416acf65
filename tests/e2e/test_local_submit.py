"""A job under ``spark-submit --master local[...]`` gets the local session's runtime tuning
(Delta's few snapshot tasks, adaptive execution), except what its command line sets."""

from __future__ import annotations

import json

from neurolake_spark.session import LOCAL_SQL_CONF

from .cluster import LOCAL_CONF, spark_submit

SHOW_CONF = f"""
import json
from neurolake_spark.config import load_settings
from neurolake_spark.session import build_spark

spark = build_spark(load_settings({str(LOCAL_CONF)!r}))
print("RESULT " + json.dumps({{key: spark.conf.get(key, None) for key in {sorted(LOCAL_SQL_CONF)!r}}}))
"""


def test_a_local_spark_submit_is_tuned_like_a_local_session_but_keeps_its_command_line(tmp_path):
    script = tmp_path / "show_conf.py"
    script.write_text(SHOW_CONF)
    done = spark_submit("local[2]", script, [], conf={"spark.sql.adaptive.enabled": "false"}, timeout=300)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout
    values = json.loads(lines[-1][len("RESULT ") :])
    assert values == {**LOCAL_SQL_CONF, "spark.sql.adaptive.enabled": "false"}
