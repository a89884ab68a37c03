"""Engine.IO v3 clients against sioserver with ``allow_eio3=True`` and against the reference, Node socket.io 4.8 /
engine.io 6.6 with ``allowEIO3: true``: the same scenarios, the same assertions, parametrized over both servers.

- socket.io-client 2.5 (sio_v2_scenarios.mjs) against sio_v2_server.py (under aiohttp, and under sioserver's own
  front through sio_v2_app.py) and sio_v2_server.mjs (the same handlers):
  over polling, WebSocket and polling-then-upgrade, acks both ways, binary both ways, the namespace ``/custom``
  (its ids, its auth from the query, its refusals) and an unknown namespace; a heartbeat scenario;
- engine.io-client 3.5 (eio3_scenarios.mjs) against sioserver's Engine.IO echo server (tests/interop/
  eio_echo_server.py) and Node's (tests/engine/node_eio_server.mjs): echoes and client pings over each transport;
- socket.io-client 2.5's browser bundle in headless Chromium (v2_browser_driver.mjs): a browser has XHR2, so
  long-polling carries binary as XHR2 binary payloads both ways, which engine.io-client 3 in Node never does (it
  always asks for ``b64=1``);
- raw HTTP for XHR2 binary payloads and for the default (off): the same bytes from both servers.

Every server pings every 300 ms (timeout 1 s), so the heartbeats run several times within each scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests._support import node, tools
from tests._support.procs import Process, start_all
from tests.interop.eio3.sio_v2_server import SERVER_BINARY

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
INTEROP = HERE.parent
REPO = INTEROP.parents[1]
IMPLS = ["sioserver", "node"]
#: the Socket.IO servers: sioserver under aiohttp (attach) and under its own front (sioserver.run), and Node
SIO_IMPLS = ["sioserver", "sioserver-run", "node"]
SIO_SCENARIOS = ["polling", "websocket", "upgrade"]
EIO_SCENARIOS = ["polling", "polling-b64", "websocket", "websocket-b64", "upgrade"]

# what the client sends and gets back, as it reports it (binary as {"$bin": hex})
ARGS: list[Any] = ["héllo ✓ 中文 🚀", 42, 3.5, True, None, {"nested": {"list": [1, "two", {"three": 3}]}, "empty": {}}, []]
CLIENT_BINARY_BACK = [{"bytes": {"$bin": "000102feff"}, "nested": [{"$bin": "78797a"}], "empty": {"$bin": ""}}, "text",
                      {"$bin": "07"}]


def as_reported(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list):
        return [as_reported(v) for v in value]
    if isinstance(value, dict):
        return {k: as_reported(v) for k, v in value.items()}
    return value


def _servers(logdir: Path, allow: bool = True) -> dict[str, dict[str, Process]]:
    py = sys.executable
    eio3 = ["--allow-eio3"] if allow else []
    return {
        "sio": {
            "sioserver": Process([py, str(HERE / "sio_v2_server.py"), "--port", "0", "--ping-interval", "0.3",
                                  "--ping-timeout", "1"], log_path=logdir / "sio-py.log", name="sio_v2_server.py"),
            "sioserver-run": Process([py, "-m", "sioserver", "tests.interop.eio3.sio_v2_app:sio", "--port", "0"],
                                     log_path=logdir / "sio-run.log", name="sioserver.run", cwd=REPO,
                                     ready=re.compile(r"sioserver listening on http://[^:]+:(\d+)")),
            "node": Process(node.argv(HERE / "sio_v2_server.mjs", "--ping-interval", "300", "--ping-timeout", "1000"),
                            log_path=logdir / "sio-node.log", name="sio_v2_server.mjs"),
        },
        "eio": {
            "sioserver": Process([py, str(INTEROP / "eio_echo_server.py"), "--port", "0", "--ping-interval", "0.3",
                                  "--ping-timeout", "1", *eio3], log_path=logdir / f"eio-py-{allow}.log",
                                 name="eio_echo_server.py"),
            "node": Process(node.argv(REPO / "tests" / "engine" / "node_eio_server.mjs", "--ping-interval", "300",
                                      "--ping-timeout", "1000", *eio3), log_path=logdir / f"eio-node-{allow}.log",
                            name="node_eio_server.mjs"),
        },
    }


@pytest.fixture(scope="module")
def servers(interop_node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    started = _servers(tmp_path_factory.mktemp("eio3"))
    every = [p for kind in started.values() for p in kind.values()]
    start_all(every)
    yield started
    for process in every:
        process.stop()


def _run(script: Path, server: Process, scenarios: list[str]) -> dict[str, dict[str, Any]]:
    done = node.run(script, server.url, ",".join(scenarios), timeout=20 * len(scenarios) + 15,
                    context=server.context())
    results = {str(r.get("scenario")): r for r in done.results()}
    missing = [s for s in scenarios if s not in results]
    assert not missing, f"no result for {missing}\n{done.context()}\n{server.context()}"
    for result in results.values():
        assert "error" not in result, f"{result['error']}\n{server.context()}"
    return results


@pytest.fixture(scope="module")
def sio_results(servers: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {impl: _run(HERE / "sio_v2_scenarios.mjs", servers["sio"][impl], [*SIO_SCENARIOS, "heartbeat"])
            for impl in SIO_IMPLS}


@pytest.fixture(scope="module")
def eio_results(servers: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {impl: _run(HERE / "eio3_scenarios.mjs", servers["eio"][impl], EIO_SCENARIOS) for impl in IMPLS}


# --------------------------------------------------------------------------------- socket.io-client 2.x


@pytest.mark.parametrize("scenario", SIO_SCENARIOS)
@pytest.mark.parametrize("impl", SIO_IMPLS)
def test_socketio_client_v2(sio_results: dict[str, Any], impl: str, scenario: str) -> None:
    r = sio_results[impl][scenario]
    if scenario != "upgrade":  # with the upgrade, "40" may come on either transport (it races the probe)
        assert r["transportAtConnect"] == scenario
    assert r["finalTransport"] == ("polling" if scenario == "polling" else "websocket")
    # the server connected "/" by itself; the socket's id is the Engine.IO sid, and the server sees that id
    assert r["idIsEngineId"] and r["whoami"] == {"sidIsSocketId": True, "nsp": "/"}
    assert r["echo"] == ARGS
    assert r["ask"] == [{"got": 21, "doubled": 42}]  # the server's ack, answered by the client
    assert r["binaryAck"] == CLIENT_BINARY_BACK
    assert r["binaryEvent"] == as_reported(SERVER_BINARY)
    # a namespace: "/custom#<sid>", the query as auth, acks and binary in it
    assert r["customIdIsNspEngineId"]
    assert r["customWhoami"] == {"sidIsSocketId": True, "nsp": "/custom", "auth": {"token": "t-1"}}
    assert r["customEcho"] == ["in custom", {"n": 1}]
    assert r["customAsk"] == ["answer to q"]
    assert r["customBinaryAck"] == [{"$bin": "010203"}]
    # CONNECT_ERROR as v2 clients read it (Node: err.data || err.message), and an unknown namespace
    assert r["refusedNoToken"] == "no token"
    assert r["refusedBadToken"] == {"reason": "bad token"}
    assert r["invalidNamespace"] == {"message": "Invalid namespace"}
    assert r["connected"] is True


@pytest.mark.parametrize("impl", SIO_IMPLS)
def test_root_namespace_auth(sio_results: dict[str, Any], impl: str) -> None:
    # where sioserver differs on purpose: "/" gets the handshake's query as its auth (Node: {}, the query is in
    # socket.handshake.query), so one connect(sid, environ, auth) serves v2 and v4 clients
    expected = {} if impl == "node" else {"token": "t-1", "user": "zoë"}
    assert all(sio_results[impl][s]["rootAuth"] == expected for s in SIO_SCENARIOS)


@pytest.mark.parametrize("impl", SIO_IMPLS)
def test_socketio_client_v2_heartbeat(sio_results: dict[str, Any], impl: str) -> None:
    r = sio_results[impl]["heartbeat"]
    assert r["pongs"] >= 4 and r["connected"] is True and r["echo"] == ["still there"]


# ----------------------------------------------------------------------------------- engine.io-client 3.x


@pytest.mark.parametrize("scenario", EIO_SCENARIOS)
@pytest.mark.parametrize("impl", IMPLS)
def test_engineio_client_v3(eio_results: dict[str, Any], impl: str, scenario: str) -> None:
    r = eio_results[impl][scenario]
    assert r["echoOk"], r["received"]
    assert r["transport"] == ("polling" if scenario.startswith("polling") else "websocket")
    assert r["pongs"] >= 2 and r["readyState"] == "open"
    handshake = r["handshake"]
    assert {"sid", "upgrades", "pingInterval", "pingTimeout"} <= set(handshake)
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (300, 1000)
    assert handshake["upgrades"] == ([] if scenario.startswith("websocket") else ["websocket"])


@pytest.mark.parametrize("impl", SIO_IMPLS)
def test_socketio_client_v2_in_chromium(servers: dict[str, Any], browser_node_modules: Path, impl: str) -> None:
    server = servers["sio"][impl]
    done = node.run(HERE / "v2_browser_driver.mjs", server.url, timeout=90, context=server.context(),
                    env={**os.environ, "CHROMIUM": tools.chromium()})
    out = done.last()
    assert out["ok"], f"{out.get('error')}\n{done.context()}"
    assert out["binaryPosts"] > 0 and out["binaryGets"] > 0, out["log"]  # XHR2 binary payloads, both ways
    for scenario, transport in (("polling", "polling"), ("upgrade", "websocket")):
        r = out["results"][scenario]
        assert r == {"supportsBinary": True, "binaryAck": ["000102feff", "text"],
                     "binaryEvent": ["000102feff", "78797a", 512, "not binary"], "customId": True,
                     "customAck": ["09"], "transport": transport}, (r, out["log"])


# ------------------------------------------------------------------------------------------ raw HTTP


async def _xhr2_echo(url: str) -> tuple[str, bytes, str, str]:
    """A v3 session without b64: POST an XHR2 binary payload (a text and a binary message), GET the echoes."""
    path = url + "/engine.io/"
    async with aiohttp.ClientSession() as http:
        async with http.get(path, params={"EIO": "3", "transport": "polling"}) as resp:
            opened = await resp.text()
        sid = json.loads(opened.partition(":")[2][1:])["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid}
        body = b"\x00\x06\xff4hello" + b"\x01\x04\xff\x04\x00\xff\x10"
        async with http.post(path, params=q, data=body, headers={"Content-Type": "application/octet-stream"}) as r:
            posted = await r.text()
        echoed = b""
        while echoed.count(b"\xff") < 2:  # the two echoes may come in one GET or two
            async with http.get(path, params=q) as resp:
                ctype = resp.headers["Content-Type"]
                echoed += await resp.read()
        async with http.post(path, params=q, data="1:1") as r:
            await r.read()
        return posted, echoed, ctype, opened


async def test_xhr2_binary_payloads_are_nodes(servers: dict[str, Any]) -> None:
    answers = {impl: await _xhr2_echo(servers["eio"][impl].url) for impl in IMPLS}
    for posted, echoed, ctype, _ in answers.values():
        assert posted == "ok"
        assert echoed == b"\x00\x06\xff4hello\x01\x04\xff\x04\x00\xff\x10"
        assert ctype == "application/octet-stream"


async def test_off_by_default_answers_as_node(interop_node_modules: Path, tmp_path: Path) -> None:
    default = _servers(tmp_path, allow=False)["eio"]
    start_all(list(default.values()))
    try:
        answers = {}
        async with aiohttp.ClientSession() as http:
            for impl, server in default.items():
                async with http.get(server.url + "/engine.io/", params={"EIO": "3", "transport": "polling"}) as r:
                    answers[impl] = (r.status, await r.json())
        assert answers["sioserver"] == answers["node"] == (400, {"code": 5, "message": "Unsupported protocol version"})
    finally:
        for server in default.values():
            server.stop()


async def _v3_heartbeat(url: str) -> tuple[str, str, float]:
    """A v3 session: one ping answered, then none: how long until the parked GET is answered, and with what."""
    path = url + "/engine.io/"
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        async with http.get(path, params={"EIO": "3", "transport": "polling", "b64": "1"}) as resp:
            sid = json.loads((await resp.text()).partition(":")[2][1:])["sid"]
        q = {"EIO": "3", "transport": "polling", "sid": sid, "b64": "1"}
        async with http.post(path, params=q, data="1:2") as r:
            await r.read()
        pinged = loop.time()
        async with http.get(path, params=q) as resp:
            pong = await resp.text()
        async with http.get(path, params=q) as resp:  # parked until the server gives up on the client
            closed = await resp.text()
        return pong, closed, loop.time() - pinged


async def test_v3_heartbeat_is_nodes(servers: dict[str, Any]) -> None:
    answers = await asyncio.gather(*(_v3_heartbeat(servers["eio"][impl].url) for impl in IMPLS))
    for pong, closed, elapsed in answers:
        # the ping is answered; no ping follows and no ping comes from the server: closed at interval + timeout
        assert (pong, closed) == ("1:3", "1:1")
        assert 1.25 <= elapsed < 1.6, answers
