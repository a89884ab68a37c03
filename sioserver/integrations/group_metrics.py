"""``GET /metrics`` under ``--workers N``: the figures of every worker, whichever worker the scrape lands on.

A scrape of the shared port reaches one worker (the kernel picks it). That worker answers its own
figures and asks each other worker for its own over the other's Unix socket (``http-<j>.sock``, the
door of forwarded requests) with ``GET /metrics`` and ``X-Sioserver-Local: 1``: a request carrying
that header is answered with the worker's own figures only, so a scrape fans out once and never again.
The fetches run at once, each bounded by :data:`FETCH_TIMEOUT`; a worker that does not answer in time
(it died and is being restarted, it drains, it is stuck) is left out and reported, never a 500.

The answers are parsed with prometheus-client's parser and merged into one exposition: each metric
family once (its HELP and TYPE once), each sample with a ``worker="<i>"`` label, and two more families:
``sioserver_worker_up{worker}`` (1 for a worker whose figures are in the answer, 0 for one that did
not answer) and ``sioserver_workers_scraped`` (how many answered, the answering worker included).
A single process (no ``--workers``) never comes here: its ``/metrics`` is the server's own, unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ..engine.http import HttpResponse
from .forward import http_socket
from .http1.request import Http1Request

__all__ = ["FETCH_TIMEOUT", "LOCAL", "GroupMetrics", "merge"]

log = logging.getLogger("sioserver")

#: the request header that asks a worker for its own figures only (the fan-out's requests carry it)
LOCAL = "X-Sioserver-Local"
#: seconds a fan-out waits for each other worker's answer (all are asked at once)
FETCH_TIMEOUT = 1.0
_MAX_ANSWER = 8 * 1024 * 1024  # a worker's exposition is a few KiB; a bigger answer is not one


class GroupMetrics:
    """Worker ``index`` of ``count``'s ``/metrics``: ``own()`` is the worker's own answer (the server's
    :meth:`~sioserver.server.metrics.Metrics.response`); :meth:`answer` is the front's route."""

    def __init__(self, own: Callable[[], HttpResponse], directory: str | Path, index: int, count: int,
                 timeout: float = FETCH_TIMEOUT) -> None:
        self.own = own
        self.directory = Path(directory)
        self.index = index
        self.count = count
        self.timeout = timeout

    async def answer(self, request: Http1Request) -> HttpResponse:
        own = self.own()
        if request.headers.get(LOCAL) is not None or own.status != 200:
            return own
        others = [j for j in range(self.count) if j != self.index]
        fetched = await asyncio.gather(*(self._fetch(j, request.path) for j in others))
        texts = {self.index: own.body.decode("utf-8")}
        for j, text in zip(others, fetched, strict=True):
            if text is not None:
                texts[j] = text
        return HttpResponse(200, merge(texts, self.count), own.headers)

    async def _fetch(self, worker: int, path: str) -> str | None:
        """Worker ``worker``'s own figures, or None (logged) when it does not answer them in time."""
        door = http_socket(self.directory, worker)
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(door))
                try:
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: worker-{worker}\r\n{LOCAL}: 1\r\n"
                                 "Connection: close\r\n\r\n".encode("latin-1"))
                    head = await reader.readuntil(b"\r\n\r\n")
                    status, length = _status_and_length(head)
                    body = await (reader.readexactly(length) if length is not None else reader.read(_MAX_ANSWER))
                finally:
                    writer.close()
            if status != 200:
                raise ConnectionError(f"it answered {status}")
            return body.decode("utf-8")
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            log.warning("metrics: worker %d did not answer its figures at %s (%r): left out of this scrape",
                        worker, door, exc)
            return None


def _status_and_length(head: bytes) -> tuple[int, int | None]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"the worker answered {status_line[:60]!r}")
    length = None
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
            if length > _MAX_ANSWER:
                raise ValueError(f"an answer of {length} bytes")
    return int(parts[1]), length


class _Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def merge(texts: dict[int, str], count: int) -> bytes:
    """One exposition of the workers' ``{index: text}``: each family once, each sample with its
    ``worker`` label, then ``sioserver_worker_up`` for the ``count`` workers and
    ``sioserver_workers_scraped``. A text that does not parse is left out like a worker that did not
    answer."""
    merged: dict[str, Metric] = {}
    scraped: set[int] = set()
    for worker in sorted(texts):
        try:
            families = list(text_string_to_metric_families(texts[worker]))
        except ValueError as exc:
            log.warning("metrics: worker %d's figures do not parse (%r): left out of this scrape", worker, exc)
            continue
        scraped.add(worker)
        label = str(worker)
        for family in families:
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            elif into.type != family.type:
                continue  # not one family (no worker of one build does this)
            for sample in family.samples:
                into.add_sample(sample.name, {**sample.labels, "worker": label}, sample.value, sample.timestamp,
                                sample.exemplar)
    up = GaugeMetricFamily("sioserver_worker_up", "1 when the worker's figures are in this scrape, 0 when it "
                           "did not answer", labels=["worker"])
    for worker in range(count):
        up.add_metric([str(worker)], 1 if worker in scraped else 0)
    families = [*merged.values(), up,
                GaugeMetricFamily("sioserver_workers_scraped", "workers whose figures are in this scrape",
                                  value=len(scraped))]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)
