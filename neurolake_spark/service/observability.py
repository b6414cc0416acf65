"""Metrics, traces and JSON access logs of the service.

Prometheus (``GET /metrics``):

- ``neurolake_http_requests_total{route,method,status}`` (counter; ``route`` is the route
  template, e.g. ``/api/v1/catalog/assets/{name}``, or ``unmatched``)
- ``neurolake_http_request_duration_seconds{route,method}`` (histogram)
- ``neurolake_http_requests_in_flight`` (gauge)
- the pipeline's own ``neurolake_job_*`` metrics, read from the textfile-collector files
  in ``metrics.textfile_dir`` at each scrape.

Traces: one span per request (OpenTelemetry's FastAPI instrumentation) and one per catalog
call; ``service.tracing_exporter`` is ``none`` (spans still carry trace ids for logs and the
audit log), ``console`` or ``otlp`` (``service.otlp_endpoint``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.parser import text_string_to_metric_families

from neurolake_spark.config import Settings

disable_created_metrics()
ACCESS_LOGGER = "neurolake.access"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PipelineMetrics:
    """A Prometheus collector re-exposing the pipeline's textfile metrics (merged by family)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def collect(self):
        families = {}
        for path in sorted(self.folder.glob("*.prom")) if self.folder.is_dir() else []:
            try:
                text = path.read_text(encoding="utf-8")
                parsed = list(text_string_to_metric_families(text))
            except (OSError, ValueError):
                continue  # a file being replaced or damaged: skip it for this scrape
            for family in parsed:
                known = families.setdefault(family.name, family)
                if known is not family:
                    known.samples.extend(family.samples)
        yield from families.values()


class HttpMetrics:
    """The service's own metrics in their own registry (tests and several apps never clash)."""

    def __init__(self, settings: Settings):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "neurolake_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "neurolake_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ("route", "method"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "neurolake_http_requests_in_flight", "HTTP requests being answered now.", registry=self.registry
        )
        self.registry.register(PipelineMetrics(settings.metrics_textfile_dir))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route, method).observe(seconds)


def tracer_provider(settings: Settings) -> TracerProvider:
    """A tracer provider with the exporter ``service.tracing_exporter`` names."""
    provider = TracerProvider(resource=Resource.create({"service.name": "neurolake"}))
    exporter = settings.service.tracing_exporter
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.service.otlp_endpoint
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter())
        )
    return provider


def current_trace_id() -> str | None:
    """The id of the current trace, 32 hex digits, or None outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    """JSON lines on stderr for the service's loggers (access log, errors)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (ACCESS_LOGGER, "neurolake_spark", "neurolake"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
