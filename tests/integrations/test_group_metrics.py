"""The merge of the workers' ``/metrics`` (sioserver/integrations/group_metrics.py): real servers'
expositions in, one exposition out that prometheus-client's parser reads, each family once; and a
worker whose door takes the connection but never answers is left out after the fetch's timeout.
The whole path through real ``--workers`` processes is tests/deploy/test_workers_metrics.py's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

import sioserver
from sioserver.engine.http import HttpResponse
from sioserver.integrations.forward import http_socket
from sioserver.integrations.group_metrics import GroupMetrics, merge


def exposition() -> str:
    return sioserver.AsyncServer(metrics=True).metrics.response().body.decode()  # type: ignore[union-attr]


def test_the_merge_names_each_family_once_and_labels_every_sample_with_its_worker() -> None:
    one = exposition()
    merged = merge({0: one, 2: one}, 3).decode()
    families = list(text_string_to_metric_families(merged))
    names = [family.name for family in families]
    assert len(names) == len(set(names))
    assert merged.count("# TYPE sioserver_ack_duration_seconds histogram") == 1
    own = {family.name: family for family in text_string_to_metric_families(one)}
    for family in families:
        if family.name in ("sioserver_worker_up", "sioserver_workers_scraped"):
            continue
        assert family.type == own[family.name].type and family.documentation == own[family.name].documentation
        assert len(family.samples) == 2 * len(own[family.name].samples)
        assert {sample.labels["worker"] for sample in family.samples} <= {"0", "2"}
    by_name = {family.name: family for family in families}
    assert {s.labels["worker"]: s.value for s in by_name["sioserver_worker_up"].samples} == {"0": 1, "1": 0, "2": 1}
    assert by_name["sioserver_workers_scraped"].samples[0].value == 2
    buckets = [s for s in by_name["sioserver_ack_duration_seconds"].samples if s.labels.get("le") == "+Inf"]
    assert sorted(s.labels["worker"] for s in buckets) == ["0", "2"]


def test_a_worker_whose_figures_do_not_parse_is_left_out_like_one_that_did_not_answer() -> None:
    merged = merge({0: exposition(), 1: "not { an exposition"}, 2).decode()
    by_name = {family.name: family for family in text_string_to_metric_families(merged)}
    assert {s.labels["worker"]: s.value for s in by_name["sioserver_worker_up"].samples} == {"0": 1, "1": 0}
    assert 'worker="1"' not in merged.replace('sioserver_worker_up{worker="1"} 0.0', "")


async def test_a_worker_that_takes_the_connection_and_never_answers_is_left_out_after_the_timeout(
        tmp_path: Path) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_unix_server(silent, str(http_socket(tmp_path, 1)))
    body = exposition().encode()
    group = GroupMetrics(lambda: HttpResponse(200, body, [("Content-Type", "text/plain")]), tmp_path, 0, 3,
                         timeout=0.2)
    try:
        started = time.monotonic()
        # worker 1 is silent, worker 2 has no socket at all
        results = await asyncio.gather(group._fetch(1, "/metrics"), group._fetch(2, "/metrics"))
        took = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert results == [None, None]
    assert 0.15 < took < 1.0, took


def test_a_worker_whose_own_answer_is_not_200_answers_it_as_it_is(tmp_path: Path) -> None:
    group = GroupMetrics(lambda: HttpResponse(503, b"no", []), tmp_path, 0, 3)

    class Request:
        headers: dict[str, str] = {}
        path = "/metrics"

    answer = asyncio.run(group.answer(Request()))  # type: ignore[arg-type]
    assert answer.status == 503 and answer.body == b"no"
