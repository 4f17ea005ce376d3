"""Prometheus metrics of this process, summed across the server's workers in multiprocess mode."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from app import context

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The text format the spec documents (generate_latest writes it).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# A validation takes about a millisecond in process; a login (argon2id) a few hundred.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# The operation label of requests no operation matched (unknown paths, wrong methods).
UNMATCHED = "none"
# How often each worker writes its pool's numbers for the others' scrapes to read.
POOL_SAMPLE_INTERVAL_S = 5.0


class Metrics:
    """What operators ask of a running server. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
    set by `coditect-cloud serve`) every worker writes its values to files there and a scrape,
    whichever worker answers it, reads them all; without it, this process's values only."""

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_DIR) or None
        if self.multiprocess_dir and values.ValueClass is values.MutexValue:
            # prometheus_client picks its value storage once, when it is imported.
            raise RuntimeError(f"prometheus_client was imported before {MULTIPROCESS_DIR} was set")
        self.registry = CollectorRegistry()
        if self.multiprocess_dir:
            multiprocess.MultiProcessCollector(self.registry, path=self.multiprocess_dir)
        # In multiprocess mode the collector reads the files: the metrics themselves stay
        # unregistered, or a scrape would list this worker's values twice.
        own = None if self.multiprocess_dir else self.registry
        # Requests by operation and status are this histogram's _count: one metric written per
        # request rather than two (as OpenTelemetry's http.server.request.duration does).
        self.duration = Histogram(
            "coditect_http_request_duration_seconds",
            "Time from the request's arrival to its response's last byte, by operation"
            " (operationId) and status code; _count is the number of requests.",
            ["operation", "status"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.validations = Counter(
            "coditect_license_validations",
            "License validations by outcome code (VALID, NOT_FOUND, SEAT_LIMIT_EXCEEDED...).",
            ["code"],
            registry=own,
        )
        self.seat_activations = Counter(
            "coditect_license_seat_activations",
            "Validations that took a seat for a new machine.",
            registry=own,
        )
        self.rate_limited = Counter(
            "coditect_rate_limit_rejections",
            "Requests answered 429, by the limit applied (anonymous, standard, enterprise) and"
            " what was counted (address, user, license_key).",
            ["tier", "bucket"],
            registry=own,
        )
        self.refreshes = Counter(
            "coditect_refresh_tokens",
            "Refresh-token rotations by outcome; outcome=reused is a detected token reuse"
            " (the session is revoked).",
            ["outcome"],
            registry=own,
        )
        self.pool_size = Gauge(
            "coditect_db_pool_connections",
            "Connections the database pools hold (summed over live workers).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_in_use = Gauge(
            "coditect_db_pool_connections_in_use",
            "Connections lent to requests at the last sample (summed over live workers).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "coditect_db_pool_requests_waiting",
            "Requests waiting for a free connection at the last sample (summed over live workers).",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.up = Gauge(
            "coditect_up",
            "Whether the API is serving.",
            registry=own,
            multiprocess_mode="livemax",
        )
        self.started = Gauge(
            "coditect_process_start_time_seconds",
            "Start time of the oldest live worker since the epoch.",
            registry=own,
            multiprocess_mode="livemin",
        )
        self.up.set(1)
        self.started.set(time.time())
        self._pools: dict[int, Callable[[], dict[str, int]]] = {}
        # Resolving label values takes a lock and builds a tuple on every call: each
        # combination is resolved once and kept.
        self._durations: dict[tuple[str | None, int], Any] = {}
        self._codes: dict[str, Any] = {}

    def request_done(self, operation: str | None, status: int, seconds: float) -> None:
        histogram = self._durations.get((operation, status))
        if histogram is None:
            histogram = self.duration.labels(operation or UNMATCHED, str(status))
            self._durations[(operation, status)] = histogram
        histogram.observe(seconds)

    def license_validated(self, outcome: Mapping[str, Any]) -> None:
        """Counts a validation by its outcome (pretenant.validate_license's row: code,
        activation_new, organization_id); the access line names the license's organization."""
        context.note_organization(outcome["organization_id"])
        code = outcome["code"]
        counter = self._codes.get(code)
        if counter is None:
            counter = self._codes[code] = self.validations.labels(code)
        counter.inc()
        if outcome["activation_new"]:
            self.seat_activations.inc()

    def refresh_rotated(self, rotated: Mapping[str, Any] | None) -> None:
        """Counts a refresh by pretenant.rotate_refresh's outcome (no row: invalid)."""
        self.refreshes.labels(rotated["outcome"] if rotated is not None else "invalid").inc()

    def rejected(self, tier: str, bucket: str) -> None:
        self.rate_limited.labels(tier, bucket).inc()

    def watch_pool(self, owner: object, stats: Callable[[], dict[str, int]] | None) -> None:
        """Where sample_pool() reads a pool's numbers (psycopg_pool's get_stats()); None
        when `owner` stops serving. Every pool of the process is summed."""
        if stats is None:
            self._pools.pop(id(owner), None)
        else:
            self._pools[id(owner)] = stats
        self.sample_pool()

    def sample_pool(self) -> None:
        size = in_use = waiting = 0
        for stats in list(self._pools.values()):
            numbers = stats()
            size += numbers.get("pool_size", 0)
            in_use += numbers.get("pool_size", 0) - numbers.get("pool_available", 0)
            waiting += numbers.get("requests_waiting", 0)
        self.pool_size.set(size)
        self.pool_in_use.set(in_use)
        self.pool_waiting.set(waiting)

    async def sample_pool_forever(self) -> None:
        """In multiprocess mode a scrape reaches one worker, which cannot ask the others'
        pools: each worker writes its numbers every few seconds instead."""
        while True:
            await asyncio.sleep(POOL_SAMPLE_INTERVAL_S)
            self.sample_pool()

    def exposition(self) -> bytes:
        self.sample_pool()
        return generate_latest(self.registry)

    def process_exited(self) -> None:
        """A worker stopping: its live gauges (pool, up) leave the sums."""
        if self.multiprocess_dir:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)


@functools.cache
def process_metrics() -> Metrics:
    """The process's one Metrics: prometheus values are per process (in multiprocess mode,
    files named by pid), so every application in it shares them."""
    return Metrics()
