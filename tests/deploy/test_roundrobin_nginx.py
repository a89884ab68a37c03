"""Three separate sioserver processes sharing a RedisAdapter, behind nginx (Debian's) round-robin: no
``ip_hash``, no cookie, each request to the next process. A session's requests that land on another node
are forwarded to the node its sid names (sioserver/integrations/nodes.py), which registered its address in
Redis.

The official socket.io-client 4.8, 20 clients with ``transports: ["polling"]`` and 20 with the default
transports (the WebSocket upgrade lands on any node too), each sends chats (acked): every client gets
every chat exactly once, no connect error, and requests were forwarded indeed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests._support import node
from tests._support.redis import RedisServer

from .conftest import HERE, Nodes, start_nodes

pytestmark = pytest.mark.interop


def forwarded(output: str) -> list[int]:
    """Each node's count of requests sent to another process, from its shutdown line."""
    return [int(n) for n in re.findall(r"node [0-9a-f]{8}(?:-\d+)?: \d+ requests forwarded .*\((\d+) over TCP\)",
                                       output)]


def test_forty_clients_through_round_robin_nginx_get_every_chat_once(round_robin: Nodes) -> None:
    context = "\n".join(p.context(3000) for p in round_robin.nodes)
    run = node.run(HERE / "workers_clients.mjs", round_robin.url, "20", "20", "2", "nokill", timeout=90,
                   context=context)
    result = run.last()
    assert result["ok"], (result, run.context(), context)
    checks, figures = result["checks"], result["figures"]
    assert checks["no_connect_error"] and checks["round0_acked"] and checks["round1_each_once"], result
    assert figures["upgraded"] == 20 and figures["polling_stayed"] == 20, figures
    assert figures["worker_pids"] == 3, figures  # the sessions live on all three processes
    assert figures["census"]["sockets"] == 40 and len(figures["census"]["others"]) == 2, figures
    output = round_robin.stop_nodes()
    counts = forwarded(output)
    assert len(counts) == 3 and sum(counts) > 0, output[-4000:]
    assert "cannot forward" not in output and "load balancer is not sticky" not in output, output[-4000:]
    print("round-robin:", json.dumps({"forwarded": counts, **figures}))


def test_a_sid_of_no_registered_node_gets_the_reference_400_through_nginx(round_robin: Nodes) -> None:
    request = urllib.request.Request(f"{round_robin.url}/socket.io/?EIO=4&transport=polling&sid=0badf00d.abcdefgh")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.loads(caught.value.read()) == {"code": 1, "message": "Session ID unknown"}
    output = round_robin.stop_nodes()
    assert "node '0badf00d' is not registered in Redis" in output, output[-3000:]
    assert "sid '0badf00d.abcdefgh' belongs to node 0badf00d, which this node cannot reach" in output
    assert sum(forwarded(output)) == 0  # nothing was connected to


def test_two_machines_of_two_workers_each_behind_round_robin_nginx(interop_node_modules: Path,
                                                                    redis_server: RedisServer,
                                                                    tmp_path: Path) -> None:
    """``--workers 2`` twice with one RedisAdapter: worker i of a machine is node ``<machine>-<i>``, reached by
    the other machine's workers through its private TCP door, by its own machine's over its Unix socket."""
    topology = start_nodes(redis_server.url, tmp_path, count=2, workers=2)
    try:
        context = "\n".join(p.context(3000) for p in topology.nodes)
        run = node.run(HERE / "workers_clients.mjs", topology.url, "10", "10", "2", "nokill", timeout=90,
                       context=context)
        result = run.last()
        assert result["ok"], (result, run.context(), context)
        figures = result["figures"]
        assert figures["upgraded"] == 10 and figures["polling_stayed"] == 10, figures
        assert figures["worker_pids"] == 4, figures
        assert figures["census"]["sockets"] == 20 and len(figures["census"]["others"]) == 3, figures
        topology.nginx.stop()
        output = topology.stop_nodes()
        assert len(re.findall(r"node [0-9a-f]{8}-[01]: sids start", output)) == 4, output[-4000:]
        counts = forwarded(output)
        assert len(counts) == 4 and sum(counts) > 0, output[-4000:]
        local = [int(n) for n in re.findall(r"worker \d: (\d+) requests forwarded", output)]
        assert sum(local) > sum(counts), output[-4000:]  # some went to the machine's other worker, over Unix
        assert "cannot forward" not in output, output[-4000:]
        print("two machines of two workers:", json.dumps({"tcp": counts, "all": local, **figures}))
    finally:
        topology.nginx.stop()
        for proc in topology.nodes:
            proc.stop(timeout=15)
