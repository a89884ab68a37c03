"""``/metrics`` under ``python -m sioserver app:sio --workers 3``: a scrape of the public port, whichever
worker the kernel hands it to, shows the figures of all three workers (each sample with ``worker="<i>"``),
as one exposition prometheus-client's parser reads. Real processes: the supervisor and its workers, and
sioclient clients (WebSocket only, so that each client's one connection is to the worker that holds its
session: killing a worker then ends only its own clients) spread so that the workers hold 1, 2 and 3.
A stopped worker (SIGSTOP) is left out after the fetch's timeout and reported by ``sioserver_worker_up``; a
killed one too, until the supervisor's replacement answers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import sioclient
from prometheus_client.parser import text_string_to_metric_families

from tests._support.procs import Process, start_or_fail
from tests._support.wait import wait_until
from tests.deploy.test_workers import READY, _door_request

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
SINGLE_READY = re.compile(r"sioserver listening on http://127\.0\.0\.1:(\d+)")


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Process]:
    env = dict(os.environ, WORKERS_TEST_METRICS="1")
    proc = Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--workers", "3", "--port", "0"],
                   log_path=tmp_path / "workers.log", cwd=HERE, env=env, ready=READY, new_session=True,
                   name="workers")
    start_or_fail(proc, timeout=30)
    try:
        yield proc
    finally:
        proc.stop(timeout=10)


class Scrape:
    """One ``/metrics`` answer, parsed: the families by name and the per-worker figures."""

    def __init__(self, text: str) -> None:
        self.text = text
        families = list(text_string_to_metric_families(text))
        self.names = [family.name for family in families]
        self.families = {family.name: family for family in families}

    def per_worker(self, family: str, sample_name: str | None = None, **labels: str) -> dict[str, float]:
        sums: defaultdict[str, float] = defaultdict(float)
        for sample in self.families[family].samples:
            if sample.name == (sample_name or family) and all(sample.labels.get(k) == v for k, v in labels.items()):
                sums[sample.labels["worker"]] += sample.value
        return dict(sums)

    def up(self) -> dict[str, float]:
        return {s.labels["worker"]: s.value for s in self.families["sioserver_worker_up"].samples}

    def scraped(self) -> float:
        return float(self.families["sioserver_workers_scraped"].samples[0].value)

    def clients(self) -> dict[str, float]:
        return self.per_worker("sioserver_connected_clients")


def scrape_port(url: str) -> Scrape:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:  # a new connection each time
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(answer.read().decode())


def scrape_door(door: Path, local: bool = False) -> Scrape:
    status, _, body = _door_request(door, "GET", "/metrics", headers=(("X-Sioserver-Local", "1"),) if local else ())
    assert status == 200, body
    return Scrape(body.decode())


def doors(workers: Process) -> list[Path]:
    for line in workers.output().splitlines():
        if "workers' sockets are in " in line:
            directory = Path(line.rsplit("workers' sockets are in ", 1)[1].strip())
            return [directory / f"http-{i}.sock" for i in range(3)]
    raise AssertionError(workers.context())


async def spread(url: str, keep: dict[int, int]) -> tuple[dict[int, list[sioclient.AsyncClient]], dict[int, int]]:
    """Clients (WebSocket only, no reconnection) until every worker holds ``keep[i]`` of them; the
    surplus disconnected. Returns the clients by worker and the workers' pids."""
    held: dict[int, list[sioclient.AsyncClient]] = {i: [] for i in keep}
    pids: dict[int, int] = {}
    surplus = []
    for _ in range(120):
        if all(len(held[i]) >= n for i, n in keep.items()):
            break
        client = sioclient.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"])
        where = await client.call("worker", timeout=10)
        pids[where["worker"]] = where["pid"]
        (held[where["worker"]] if len(held[where["worker"]]) < keep[where["worker"]] else surplus).append(client)
    else:
        raise AssertionError(f"120 connections did not reach {keep}: {({i: len(c) for i, c in held.items()})}")
    await asyncio.gather(*(client.disconnect() for client in surplus))
    return held, pids


async def test_a_scrape_of_any_worker_shows_every_worker_and_one_that_does_not_answer_is_reported(
        workers: Process) -> None:
    url = workers.url
    held, pids = await spread(url, {0: 1, 1: 2, 2: 3})
    expected = {"0": 1.0, "1": 2.0, "2": 3.0}
    try:
        # the surplus clients' sessions close at their workers once their close packets arrive
        await wait_until(lambda: asyncio.to_thread(lambda: scrape_port(url).clients() == expected), timeout=10,
                         what=lambda: f"per-worker clients {expected}: {scrape_port(url).clients()}")
        started = time.monotonic()
        for _ in range(12):  # new connections: the kernel hands them to all three workers
            scrape = await asyncio.to_thread(scrape_port, url)
            assert len(scrape.names) == len(set(scrape.names)), scrape.names  # each family once
            assert scrape.up() == {"0": 1.0, "1": 1.0, "2": 1.0} and scrape.scraped() == 3
            assert scrape.clients() == expected, scrape.text
            assert sum(scrape.clients().values()) == 6
            assert scrape.per_worker("sioserver_connected_clients", transport="websocket") == expected
            assert scrape.per_worker("sioserver_namespace_sockets", namespace="/") == expected
            assert set(scrape.per_worker("sioserver_ack_duration_seconds", "sioserver_ack_duration_seconds_bucket",
                                            le="+Inf")) == {"0", "1", "2"}
        took = (time.monotonic() - started) / 12
        door = doors(workers)
        for i in range(3):  # each worker, asked directly, answers the whole group ...
            assert (await asyncio.to_thread(scrape_door, door[i])).clients() == expected
            own = await asyncio.to_thread(scrape_door, door[i], True)  # ... and with the header, its own only
            assert "sioserver_worker_up" not in own.families and 'worker="' not in own.text
            assert sum(s.value for s in own.families["sioserver_connected_clients"].samples) == i + 1

        os.kill(pids[0], signal.SIGSTOP)  # worker 0 takes connections on its door but answers nothing
        try:
            started = time.monotonic()
            scrape = await asyncio.to_thread(scrape_door, door[1])
            stalled = time.monotonic() - started
        finally:
            os.kill(pids[0], signal.SIGCONT)
        assert scrape.up() == {"0": 0.0, "1": 1.0, "2": 1.0} and scrape.scraped() == 2, scrape.text
        assert scrape.clients() == {"1": 2.0, "2": 3.0}
        assert 0.9 < stalled < 3.0, stalled  # the fetch's 1 s timeout, not the scraper's
        assert "metrics: worker 0 did not answer its figures" in workers.output()

        os.kill(pids[2], signal.SIGKILL)  # its three clients go with it; the supervisor starts a new worker 2
        # until the supervisor reaped it: before, its listening socket may still take a connection, which
        # the kernel resets when the process is torn down (a connection to a dead process, not a scrape)
        await wait_until(lambda: f"(pid {pids[2]}) died (signal SIGKILL)" in workers.output(), timeout=10,
                         what=lambda: f"the supervisor reaps worker 2: {workers.context()}")
        seen: list[dict[str, float]] = []

        def replaced() -> bool:
            scrape = scrape_port(url)  # answers while worker 2 is away: a 200 that says so, never a 500
            seen.append(scrape.up())
            return scrape.up() == {"0": 1.0, "1": 1.0, "2": 1.0} and scrape.clients() == {"0": 1.0, "1": 2.0,
                                                                                          "2": 0.0}
        await wait_until(lambda: asyncio.to_thread(replaced), timeout=15, what=lambda: f"the replacement: {seen}")
        print(f"12 scrapes of 3 workers, {took * 1000:.1f} ms each; a stopped worker left out after "
              f"{stalled:.2f} s; while worker 2 was replaced the scrapes saw {seen[:3]}... ({len(seen)} scrapes)")
    finally:
        await asyncio.gather(*(client.disconnect() for clients in held.values() for client in clients),
                             return_exceptions=True)


def test_one_process_metrics_have_no_worker_label(tmp_path: Path) -> None:
    """Without --workers, /metrics is the server's own exposition, as before."""
    env = dict(os.environ, WORKERS_TEST_METRICS="1")
    proc = Process([sys.executable, "-m", "sioserver", "workers_app:sio", "--port", "0"], log_path=tmp_path / "one.log",
                   cwd=HERE, env=env, ready=SINGLE_READY, new_session=True, name="one")
    start_or_fail(proc, timeout=30)
    try:
        scrape = scrape_port(proc.url)
    finally:
        proc.stop(timeout=10)
    assert "sioserver_worker_up" not in scrape.families and 'worker="' not in scrape.text
    assert scrape.names[0] == "sioserver_connected_clients"
