"""Prometheus metrics: request latency per route template, counts of memories added and searches run, and
lookups in the layered read cache per kind and layer.

Each app gets its own registry, so several apps in one process (tests, embedding) never collide. With
``--workers N`` each worker reports its own numbers; scrape them behind the load balancer or run one worker
per container.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's collectors on a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "memstrata_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ("method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.memories_added = Counter(
            "memstrata_memories_added_total", "Memories created or changed by add calls", ("event",),
            registry=self.registry,
        )
        self.add_calls = Counter("memstrata_add_requests_total", "add calls that succeeded", registry=self.registry)
        self.searches = Counter(
            "memstrata_search_requests_total", "search and context calls that succeeded", ("kind",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "memstrata_rate_limited_total", "Requests refused by the per-key rate limit", registry=self.registry
        )

    def watch_store(self, store: Any) -> None:
        """Count the store's reads by where they ran (a PostgreSQL standby or the primary, and why), when the
        store routes reads to replicas."""
        if callable(getattr(store, "read_counts", None)):
            self.registry.register(_StoreReads(store))

    def watch_cache(self, layers: Any) -> None:
        """Count the layered read cache's lookups, when the memory has one (``Memory.cache_layers``)."""
        if callable(getattr(layers, "snapshot", None)):
            self.registry.register(_CacheLookups(layers))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StoreReads:
    """``memstrata_store_reads_total{target, reason}``, read from the store at each scrape."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("memstrata_store_reads", "Store reads by where they ran: a read replica, or "
                                     "the primary with the reason", labels=("target", "reason"))
        for target, reasons in self.store.read_counts().items():
            for reason, n in sorted(reasons.items()):
                family.add_metric([target, reason], n)
        yield family


class _CacheLookups:
    """``memstrata_cache_lookups_total{kind, layer, outcome}``: ``kind`` is ``query_vector`` or ``scope``,
    ``layer`` ``process`` or ``redis``, ``outcome`` ``hit``, ``miss`` or ``bypass`` (Redis away, read from the
    database or the embedder). The hit rate of a layer is ``hit / (hit + miss)`` of its rates."""

    def __init__(self, layers: Any) -> None:
        self.layers = layers

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("memstrata_cache_lookups", "Lookups in the layered read cache by kind, layer "
                                     "and outcome", labels=("kind", "layer", "outcome"))
        for kind, layers in self.layers.snapshot()["layers"].items():
            for layer, outcomes in layers.items():
                for outcome, n in outcomes.items():
                    family.add_metric([kind, layer, outcome], n)
        yield family


class MetricsMiddleware:
    """Observes each HTTP request's latency under its route template (never the raw path: ids would explode it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("/mcp" if scope["path"].startswith("/mcp") else "unmatched")
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(time.perf_counter() - start)
