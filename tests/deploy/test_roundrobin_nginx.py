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

import pytest

from tests._support import node

from .conftest import HERE, Nodes

pytestmark = pytest.mark.interop


def forwarded(output: str) -> list[int]:
    """Each node's count, from its shutdown line."""
    return [int(n) for n in re.findall(r"node [0-9a-f]{8}: (\d+) requests forwarded", output)]


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
