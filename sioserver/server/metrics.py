"""Prometheus metrics of one server: ``AsyncServer(metrics=True)`` serves them at ``GET /metrics``.

Made with prometheus-client, in a registry of the server's own (two servers in one process each show
their own figures). A server without ``metrics`` pays nothing. With them, the per-message sites only
append the message to a list (:attr:`~sioserver.server.observer.Observer.received_log` and
``sent_log``: one C call, no Python frame); the lists are folded into the packet and byte counts with
C-level loops when Prometheus scrapes and by a timer that aims at about 2000 messages a fold (5 ms
to 0.5 s apart: the logs stay small enough for the CPU's caches, the strings they hold are freed
soon, and an idle server wakes twice a second). Broadcasts add to plain integers once per
broadcast; gauges are read from the server's state at scrape time.

=============================================  =========  ================================================
``sioserver_connected_clients{transport}``      gauge      Engine.IO connections, by current transport
``sioserver_namespace_sockets{namespace}``      gauge      connected sockets per namespace
``sioserver_packets_received_total{type}``      counter    Socket.IO packets from clients (``event``,
``sioserver_packets_sent_total{type}``          counter    ``ack``, ``connect``... ``attachment`` for binary)
``sioserver_bytes_received_total``              counter    their bytes (UTF-8), without the Engine.IO prefix
``sioserver_bytes_sent_total``                  counter
``sioserver_disconnects_total{reason}``         counter    closed connections, by ``DisconnectReason``
``sioserver_acks_pending``                      gauge      acks the server waits for from clients
``sioserver_ack_duration_seconds``              histogram  from the emit to the client's ack
``sioserver_acks_failed_total{outcome}``        counter    ``timeout`` or ``disconnected``
``sioserver_slow_consumer_total``               counter    backlog over ``max_buffered_bytes`` (disconnects
                                                           and drops)
``sioserver_event_loop_lag_seconds``            gauge      how late a 0.5 s timer of the loop fired, last
``sioserver_adapter_healthy{namespace}``        gauge      1 when the cluster adapter is connected
``sioserver_adapter_lag_seconds``               gauge      round trip of a cluster request (Redis NUMSUB)
``sioserver_adapter_publish_failures_total``    counter    messages the adapter could not publish (dropped, or
                                                           in flight when Redis failed)
``sioserver_adapter_queued_messages``            gauge      messages waiting for Redis (bounded by count, bytes, age)
=============================================  =========  ================================================
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, exposition, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..engine.http import HttpResponse
from ..engine.session import DisconnectReason
from .observer import Observer

if TYPE_CHECKING:
    from ..engine.session import Session
    from .server import AsyncServer
    from .socket import Socket

__all__ = ["ACK_BUCKETS", "Metrics"]

log = logging.getLogger("sioserver.server")

#: upper bounds (seconds) of the ack duration histogram
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PACKET_TYPES = {"0": "connect", "1": "disconnect", "2": "event", "3": "ack", "4": "connect_error",
                 "5": "binary_event", "6": "binary_ack"}
#: the text format every Prometheus reads (the names here need none of 1.0.0's escaping)
_CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", CONTENT_TYPE_LATEST)
_LAG_PERIOD = 0.5
_FIRST = itemgetter(0)  # a message's first character: its packet type
_ADAPTER_PERIOD = 5.0
_FOLD_BATCH = 2000  # messages (received and sent) per fold the fold timer aims at
_FOLD_MIN, _FOLD_MAX = 0.005, 0.5  # seconds between folds


class Metrics(Observer):
    """The metrics of one :class:`~sioserver.AsyncServer`, and their Prometheus registry."""

    def __init__(self, sio: AsyncServer, path: str = "/metrics") -> None:
        self.sio = sio
        self.path = path
        self.received: defaultdict[str, int] = defaultdict(int)  # by the packet's first character
        self.sent: defaultdict[str, int] = defaultdict(int)
        self.received_log: list[str | bytes] = []  # what the server appends to, folded by fold()
        self.sent_log: list[str | bytes] = []
        self.bytes_received = 0
        self.bytes_sent = 0
        self.disconnects: dict[str, int] = {}
        self.ack_counts = [0] * (len(ACK_BUCKETS) + 1)
        self.ack_sum = 0.0
        self.acks_timed_out = 0
        self.acks_disconnected = 0
        self.loop_lag = 0.0
        self.adapter_lag: float | None = None
        self._task: asyncio.Task[Any] | None = None
        self._fold_timer: asyncio.TimerHandle | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        sio.observe(self)
        sio.when_running(self._start)

    # ------------------------------------------------------------------ hooks (hot)

    def message_sent(self, data: str | bytes, count: int = 1) -> None:
        """A broadcast's message (messages to one client come through :attr:`sent_log`)."""
        if data.__class__ is str:
            self.sent[data[:1]] += count
            size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        else:
            self.sent["b"] += count
            size = len(data)
        self.bytes_sent += size * count

    def fold(self) -> None:
        """Count what the server appended to the logs since the last fold, and empty them."""
        if self.received_log:
            self.bytes_received += _fold(self.received_log, self.received)
        if self.sent_log:
            self.bytes_sent += _fold(self.sent_log, self.sent)

    def session_closed(self, session: Session, reason: DisconnectReason) -> None:
        key = reason.value
        self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def ack_answered(self, socket: Socket, seconds: float) -> None:
        self.ack_counts[bisect.bisect_left(ACK_BUCKETS, seconds)] += 1
        self.ack_sum += seconds

    def ack_failed(self, socket: Socket, timed_out: bool) -> None:
        if timed_out:
            self.acks_timed_out += 1
        else:
            self.acks_disconnected += 1

    # ------------------------------------------------------------ background probes

    def _start(self) -> None:
        if self._task is None:
            self._task = self.sio.start_background_task(self._probe)
            self._fold_timer = asyncio.get_running_loop().call_later(_FOLD_MAX, self._fold_tick, _FOLD_MAX)

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._fold_timer is not None:
            self._fold_timer.cancel()
            self._fold_timer = None
        self.fold()

    def _fold_tick(self, period: float) -> None:
        """Fold the logs, and come back when about ``_FOLD_BATCH`` messages will be waiting again."""
        waiting = len(self.received_log) + len(self.sent_log)
        self.fold()
        period = min(_FOLD_MAX, max(_FOLD_MIN, period * _FOLD_BATCH / waiting)) if waiting else _FOLD_MAX
        self._fold_timer = asyncio.get_running_loop().call_later(period, self._fold_tick, period)

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        next_adapter = 0.0
        while True:
            started = loop.time()
            await asyncio.sleep(_LAG_PERIOD)
            self.loop_lag = max(0.0, loop.time() - started - _LAG_PERIOD)
            if loop.time() >= next_adapter:
                next_adapter = loop.time() + _ADAPTER_PERIOD
                await self._probe_adapter()

    async def _probe_adapter(self) -> None:
        for nsp in list(self.sio._namespaces.values()):
            adapter = nsp.adapter
            if getattr(adapter, "healthy", None) is None:
                continue
            started = time.perf_counter()
            try:
                async with asyncio.timeout(_ADAPTER_PERIOD):
                    await adapter.server_count()
            except Exception as exc:  # a probe: its failure is what healthy=0 reports
                log.debug("adapter probe of %s failed: %r", nsp.name, exc)
                self.adapter_lag = None
            else:
                self.adapter_lag = time.perf_counter() - started
            return

    # -------------------------------------------------------------------- scrape

    def response(self) -> HttpResponse:
        """``GET /metrics``: the Prometheus text format."""
        return HttpResponse(200, generate_latest(self.registry),
                            [("Content-Type", _CONTENT_TYPE), ("Cache-Control", "no-store")])

    def collect(self) -> Iterator[Metric]:
        sio = self.sio
        self.fold()
        clients = GaugeMetricFamily("sioserver_connected_clients", "Engine.IO connections by transport",
                                    labels=["transport"])
        by_transport = {"polling": 0, "websocket": 0}
        for session in list(sio.eio.sessions.values()):
            if not session.closed:
                by_transport[session.transport] = by_transport.get(session.transport, 0) + 1
        for transport, count in by_transport.items():
            clients.add_metric([transport], count)
        yield clients

        sockets = GaugeMetricFamily("sioserver_namespace_sockets", "connected sockets per namespace",
                                    labels=["namespace"])
        pending = 0
        for nsp in list(sio._namespaces.values()):
            connected = 0
            for socket in list(nsp.sockets.values()):
                if socket.connected:
                    connected += 1
                pending += len(socket.acks)
            sockets.add_metric([nsp.name], connected)
        yield sockets

        for name, counts, direction in (("sioserver_packets_received_total", self.received, "from clients"),
                                        ("sioserver_packets_sent_total", self.sent, "to clients")):
            family = CounterMetricFamily(name[:-6], f"Socket.IO packets {direction}, by type", labels=["type"])
            for key, count in sorted(counts.items()):
                family.add_metric([_PACKET_TYPES.get(key, "attachment")], count)
            yield family
        yield CounterMetricFamily("sioserver_bytes_received", "bytes of the packets from clients",
                                  value=self.bytes_received)
        yield CounterMetricFamily("sioserver_bytes_sent", "bytes of the packets to clients", value=self.bytes_sent)

        disconnects = CounterMetricFamily("sioserver_disconnects", "closed connections by reason", labels=["reason"])
        reasons = {reason.value: 0 for reason in DisconnectReason}  # every reason from the start: rate() works
        reasons.update(self.disconnects)
        for reason, count in reasons.items():
            disconnects.add_metric([reason], count)
        yield disconnects

        yield GaugeMetricFamily("sioserver_acks_pending", "acks the server waits for from clients", value=pending)
        buckets = []
        cumulative = 0
        for bound, count in zip((*ACK_BUCKETS, float("inf")), self.ack_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily("sioserver_ack_duration_seconds", "from an emit to the client's ack",
                                    buckets=buckets, sum_value=self.ack_sum)
        failed = CounterMetricFamily("sioserver_acks_failed", "acks that never came", labels=["outcome"])
        failed.add_metric(["timeout"], self.acks_timed_out)
        failed.add_metric(["disconnected"], self.acks_disconnected)
        yield failed

        stats = sio.eio.stats
        yield CounterMetricFamily("sioserver_slow_consumer", "clients over max_buffered_bytes (disconnects, drops)",
                                  value=stats["slow_consumers"] + stats["dropped_slow_consumer"])
        yield GaugeMetricFamily("sioserver_event_loop_lag_seconds", "how late the last 0.5 s timer fired",
                                value=self.loop_lag)
        yield from self._adapter_metrics()

    def _adapter_metrics(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily("sioserver_adapter_healthy", "1 while the cluster adapter is connected",
                                    labels=["namespace"])
        failures = 0
        queued = 0
        seen: set[int] = set()
        links: set[int] = set()
        cluster = False
        for nsp in list(self.sio._namespaces.values()):
            adapter = nsp.adapter
            ok = getattr(adapter, "healthy", None)
            if ok is None:
                continue
            cluster = True
            healthy.add_metric([nsp.name], 1 if ok else 0)
            stats = getattr(adapter, "stats", None)
            if stats is not None and id(stats) not in seen:  # one Counter may be shared by many namespaces
                seen.add(id(stats))
                failures += stats.get("messages_lost", 0) + stats.get("messages_uncertain", 0)
            waiting = getattr(adapter, "queued", None)
            link = getattr(adapter, "link", adapter)
            if isinstance(waiting, int) and id(link) not in links:  # one link may serve many namespaces
                links.add(id(link))
                queued += waiting
        if not cluster:
            return
        yield healthy
        if self.adapter_lag is not None:
            yield GaugeMetricFamily("sioserver_adapter_lag_seconds", "round trip of a cluster request",
                                    value=self.adapter_lag)
        yield CounterMetricFamily("sioserver_adapter_publish_failures", "messages the adapter could not publish",
                                  value=failures)
        yield GaugeMetricFamily("sioserver_adapter_queued_messages", "messages waiting for Redis", value=queued)



def _fold(log: list[str | bytes], counts: defaultdict[str, int]) -> int:
    """Add ``log``'s messages to ``counts`` by packet type (their first character; ``"b"`` for binary
    and anything else), empty it and return its size in bytes (UTF-8 for text). The loops run in C:
    a string of the first characters, counted per type, and the text joined once for its size."""
    try:
        firsts = "".join(map(_FIRST, log))  # IndexError: an empty message; TypeError: a binary one
        text = "".join(log)  # type: ignore[arg-type]
    except (IndexError, TypeError):
        size = 0
        for data in log:
            if data.__class__ is str:
                counts[data[:1] if data[:1] in _PACKET_TYPES else "b"] += 1
                size += len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
            else:
                counts["b"] += 1
                size += len(data)
    else:
        typed = 0
        for first in _PACKET_TYPES:
            if count := firsts.count(first):
                counts[first] += count
                typed += count
        if typed < len(firsts):
            counts["b"] += len(firsts) - typed
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    log.clear()
    return size
