"""Which listeners a JobRun gets: the registry of listener factories, filled by the session or Lakehouse."""

from pathlib import Path

from neurolake_spark.config import load_settings
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.lineage.listener import LineageListener
from neurolake_spark.metrics import MetricsListener
from neurolake_spark.run_listeners import ListenerRegistry, run_listeners
from neurolake_spark.run_status import RunStatus
from neurolake_spark.runs import JobRun
from neurolake_spark.session import register_run_listeners

ROOT = Path(__file__).resolve().parents[2]


def settings_for(tmp_path, **overrides):
    return load_settings(
        ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path), **overrides}, env={}
    )


class Recorder:
    def __init__(self, seen: list):
        self.seen = seen

    def on_start(self, run: JobRun) -> None:
        self.seen.append(("start", run.job_name, run.status))

    def on_end(self, run: JobRun) -> None:
        self.seen.append(("end", run.job_name, run.status))


def test_factories_make_listeners_in_registration_order_and_a_name_is_replaced_in_place(tmp_path):
    registry = ListenerRegistry()
    first, second = [], []
    registry.register("a", lambda settings: [Recorder(first)])
    registry.register("b", lambda settings: [Recorder(second)] if settings.metrics.enabled else [])
    registry.register("a", lambda settings: [Recorder(first), Recorder(first)])
    assert registry.names() == ["a", "b"]
    assert len(registry.build(settings_for(tmp_path))) == 3
    assert len(registry.build(settings_for(tmp_path, **{"metrics.enabled": False}))) == 2


def test_a_run_given_no_listeners_gets_the_registered_ones_and_its_children_share_them(tmp_path, monkeypatch):
    registry, seen = ListenerRegistry(), []
    registry.register("recorder", lambda settings: [Recorder(seen)])
    monkeypatch.setattr("neurolake_spark.runs.run_listeners", registry)
    with JobRun("nightly", settings_for(tmp_path)) as nightly, nightly.child("silver"):
        pass
    assert seen == [
        ("start", "nightly", RunStatus.RUNNING),
        ("start", "silver", RunStatus.RUNNING),
        ("end", "silver", RunStatus.SUCCESS),
        ("end", "nightly", RunStatus.SUCCESS),
    ]
    assert nightly.status is RunStatus.SUCCESS


def test_the_session_registers_metrics_then_lineage_once_and_a_lakehouse_does_too(tmp_path, monkeypatch):
    registry = ListenerRegistry()
    register_run_listeners(registry)
    register_run_listeners(registry)  # again: nothing doubles
    settings = settings_for(tmp_path)
    assert [type(x) for x in registry.build(settings)] == [MetricsListener, LineageListener]
    assert (
        registry.build(settings_for(tmp_path, **{"metrics.enabled": False, "lineage.enabled": False})) == []
    )

    monkeypatch.setattr(run_listeners, "_factories", {})  # as in a fresh process
    assert JobRun("gold", settings).listeners == []
    assert [type(x) for x in Lakehouse(settings).run("gold").listeners] == [MetricsListener, LineageListener]
