"""Socket.IO interop with the official Node client (socket.io-client 4.8, socket.io-msgpack-parser 3.0).

sio_client_scenarios.mjs runs the scenarios of one group in sequence in one Node process against one
sio_test_server.py and prints one JSON result per scenario; these tests assert on what the client observed.
Groups (each with its own server, started on first use):

- ``default`` / ``msgpack``: the main scenarios with each serializer (server and client parser agree);
- ``heartbeat``: a server with pingInterval = pingTimeout = 300 ms and connect_timeout = 0.5 s;
- ``only-websocket`` / ``only-polling``: servers restricted to one transport;
- ``kill`` / ``shutdown``: a fresh server that the scenario SIGKILLs / SIGTERMs itself.

Expected values are what the reference server (Node socket.io 4.8) makes the client see.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sio_harness import SERVER_BINARY, NodeRun, ServerPool, SioServer, run_node_scenarios

pytestmark = pytest.mark.interop

MAIN = [
    "rooms",  # first: its broadcast to everyone must find no client of another scenario
    "websocket",
    "polling",
    "upgrade",
    "namespaces",
    "dynamic",
    "auth",
    "refused",
    "invalid-namespace",
    "acks",
    "ack-ids",
    "binary",
    "binary-polling",
    "attachment-limit",
    "server-disconnect",
    "close-transport",
    "reconnect",
]
HEARTBEAT = ["heartbeat", "ping-timeout-client", "ping-timeout-server", "connect-timeout"]


@dataclass(frozen=True)
class Group:
    scenarios: list[str]
    server: dict[str, Any]
    parser: str = "default"
    fresh: bool = False  # a server of its own, which the scenario kills
    timeout_s: float = 10.0


GROUPS: dict[str, Group] = {
    "default": Group([*MAIN, "payload-limits"], {}),
    "msgpack": Group(MAIN, {"serializer": "msgpack"}, parser="msgpack"),
    "heartbeat": Group(HEARTBEAT, {"ping_interval": 0.3, "ping_timeout": 0.3, "connect_timeout": 0.5}),
    "only-websocket": Group(["only-websocket"], {"transports": "websocket"}),
    "only-polling": Group(["only-polling"], {"transports": "polling"}),
    "kill": Group(["kill"], {}, fresh=True),
    "shutdown": Group(["shutdown"], {}, fresh=True),
}

# what the scenarios send, as Python sees it once the JSON is parsed
ARGS: list[Any] = [
    "héllo ✓ 中文 🚀",
    42,
    3.5,
    True,
    None,
    {"nested": {"list": [1, "two", {"three": 3}]}, "empty": {}},
    [],
]
BASIC_AUTH = {"token": "t-1", "user": {"name": "zoë", "roles": ["a", "b"]}}
CLIENT_BINARY: dict[str, Any] = {
    "buf": bytes([0, 1, 2, 253, 254, 255]),
    "list": [bytes([10, 20, 30]), "text", {"deep": [b"deep bytes", 7]}],
    "arrayBuffer": bytes([7, 8, 9]),
    "all": bytes(range(256)),
    "empty": b"",
    "plain": {"n": 1, "s": "ünï"},
}
HANDSHAKE_KEYS = ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]


def decode(value: Any) -> Any:
    """The scenario's JSON with every ``{"$bin": hex, "$type": ..}`` turned back into bytes."""
    if isinstance(value, dict):
        if "$bin" in value:
            return bytes.fromhex(value["$bin"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def binary_types(value: Any) -> set[str]:
    """The JavaScript types the client decoded binaries into."""
    if isinstance(value, dict):
        if "$bin" in value:
            return {str(value["$type"])}
        return set().union(*(binary_types(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(binary_types(v) for v in value)) if value else set()
    return set()


@dataclass
class Outcome:
    """One scenario's result, with what a failure message needs."""

    name: str
    result: dict[str, Any]
    run: NodeRun
    server: SioServer

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.result.get("data") or {})

    def why(self, what: str) -> str:
        result = json.dumps(self.result, indent=1, ensure_ascii=False, default=str)
        if len(result) > 10000:
            result = result[:10000] + "\n[…]"
        return f"{what}\n--- scenario {self.name!r} ---\n{result}\n{self.run.context()}\n{self.server.context()}"

    def assert_clean(self) -> dict[str, Any]:
        """The scenario ran to its end with every client-side check passing; returns its data."""
        assert self.result.get("error") is None, self.why("the scenario failed")
        assert not self.result.get("failures"), self.why("client-side checks failed")
        assert self.result.get("ok") is True, self.why("not ok")
        return self.data


Scenario = Callable[[str, str], Outcome]


@pytest.fixture(scope="module")
def scenario(interop_node_modules: Path, sio_servers: ServerPool) -> Iterator[Scenario]:
    """``scenario(group, name)``: the result of one scenario; each group runs once, on first use."""
    runs: dict[str, tuple[NodeRun, SioServer]] = {}
    broken: dict[str, str] = {}  # a group whose run failed fails its other tests at once, without a rerun

    def get(group_name: str, name: str) -> Outcome:
        if group_name in broken:
            pytest.fail(f"group {group_name!r} did not run: {broken[group_name]}", pytrace=False)
        if group_name not in runs:
            group = GROUPS[group_name]
            try:
                server = sio_servers.fresh(**group.server) if group.fresh else sio_servers.shared(**group.server)
                run = run_node_scenarios(
                    server,
                    group.scenarios,
                    parser=group.parser,
                    scenario_timeout_s=group.timeout_s,
                    pass_pid=group.fresh,
                )
            except pytest.fail.Exception as exc:
                broken[group_name] = str(exc)[:4000]
                raise
            runs[group_name] = (run, server)
        run, server = runs[group_name]
        return Outcome(name, run.results[name], run, server)

    yield get


both_parsers = pytest.mark.parametrize("group", ["default", "msgpack"])


# ------------------------------------------------------------------------------------------ transports


@both_parsers
@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_basics(scenario: Scenario, group: str, transport: str) -> None:
    """Connect over one transport, welcome with the auth, acks, emits in order, client disconnect."""
    out = scenario(group, transport)
    d = out.assert_clean()
    hs = d["handshake"]
    assert sorted(hs) == HANDSHAKE_KEYS, out.why("the handshake has exactly the five keys")
    assert hs["upgrades"] == ([] if transport == "websocket" else ["websocket"]), out.why("upgrades offered")
    assert (hs["pingInterval"], hs["pingTimeout"], hs["maxPayload"]) == (25000, 20000, 1_000_000), out.why("hs")
    assert d["transportAtConnect"] == d["transportAtEnd"] == transport, out.why("transport")
    sid = d["socketId"]
    assert sid and sid != d["engineId"], out.why("the namespace sid is fresh, not the Engine.IO sid")
    assert d["welcome"] == {"auth": BASIC_AUTH, "sid": sid, "nsp": "/", "transport": transport}, out.why("welcome")
    assert d["firstEvent"] == "welcome", out.why("the welcome emitted by the connect handler comes first")
    assert d["echoAck"] == ARGS, out.why("the ack carries every argument back")
    assert d["echoEvent"] == ARGS, out.why("echo-emit sends every argument back")
    assert d["whoami"] == {"sid": sid, "nsp": "/", "transport": transport, "rooms": [sid]}, out.why("whoami")
    assert d["order"] == list(range(30)), out.why("30 events come back in order")
    assert d["clientReason"] == "io client disconnect", out.why("client-side reason")
    assert d["serverReason"] == "client disconnect", out.why("the server's disconnect handler reason")


@both_parsers
def test_upgrade(scenario: Scenario, group: str) -> None:
    """Polling first, events over polling, then the upgrade (with events in flight) and events over WebSocket."""
    out = scenario(group, "upgrade")
    d = out.assert_clean()
    assert d["handshake"]["upgrades"] == ["websocket"], out.why("a polling session offers the upgrade")
    assert d["transportAtConnect"] == d["transportBefore"] == "polling", out.why("polling first")
    assert d["welcome"]["transport"] == "polling" and d["welcome"]["auth"] == {"via": "upgrade"}, out.why("welcome")
    assert decode(d["ackBefore"]) == ["before", b"\x01\x02\x03"], out.why("an ack over polling")
    assert d["whoamiBefore"]["transport"] == "polling", out.why("the server sees polling before the upgrade")
    assert d["upgradeEvent"] == "websocket" and d["transportAfter"] == "websocket", out.why("upgraded")
    assert decode(d["duringUpgrade"]) == [[i, bytes([i])] for i in range(20)], out.why("nothing lost in the upgrade")
    assert decode(d["ackAfter"]) == ["after", b"\x04\x05\x06"], out.why("an ack over the WebSocket")
    assert d["eventAfter"] == ["event-after"], out.why("an event over the WebSocket")
    who = d["whoamiAfter"]
    assert who["transport"] == "websocket" and who["sid"] == d["whoamiBefore"]["sid"], out.why("same socket")


@pytest.mark.parametrize("group", ["only-websocket", "only-polling"])
def test_restricted_transports(scenario: Scenario, group: str) -> None:
    """A server with one transport: the other one cannot connect, and no upgrade is offered."""
    out = scenario(group, group)
    d = out.assert_clean()
    assert sorted(d["handshake"]) == HANDSHAKE_KEYS and d["handshake"]["upgrades"] == [], out.why("no upgrades")
    if group == "only-websocket":
        assert d["whoami"]["transport"] == "websocket", out.why("websocket")
        assert d["polling"] == {"connected": False, "message": "xhr poll error"}, out.why("polling is refused")
        assert d["default"] == {"connected": False, "message": "xhr poll error"}, out.why("polling first: refused")
    else:
        assert d["upgrading"] is False and d["transport"] == "polling", out.why("stays on polling")
        assert d["whoami"]["transport"] == "polling", out.why("the server sees polling")
        assert d["websocket"] == {"connected": False, "message": "websocket error"}, out.why("websocket refused")


# ------------------------------------------------------------------------------------------ namespaces, auth


@both_parsers
def test_namespaces(scenario: Scenario, group: str) -> None:
    """ "/" and "/custom" multiplexed on one connection, isolated from each other; "/custom" alone."""
    out = scenario(group, "namespaces")
    d = out.assert_clean()
    ids = d["ids"]
    assert d["sameEngine"] is True, out.why("multiplexed")
    assert len({ids["main"], ids["custom"], ids["engine"]}) == 3, out.why("a fresh sid per namespace")
    for key, nsp in (("main", "/"), ("custom", "/custom")):
        welcome = {"auth": {"ns": key}, "sid": ids[key], "nsp": nsp, "transport": "websocket"}
        assert d["welcome"][key] == welcome, out.why(f"welcome in {nsp}")
        assert d["whoami"][key] == {"sid": ids[key], "nsp": nsp, "transport": "websocket", "rooms": [ids[key]]}
    assert d["echo"] == {"main": ["to-main"], "custom": ["to-custom"]}, out.why("acks per namespace")
    assert d["customEvent"] == ["custom-only"], out.why("event in /custom")
    assert d["mainEchoEvents"] == [], out.why("an event of /custom does not reach /")
    assert d["mainAfterCustomLeft"] == ["still-here"] and d["engineOpen"] == "open", out.why("/ survives")
    rejoined = d["rejoined"]
    assert rejoined["sameEngine"] is True and rejoined["id"] not in (ids["custom"], None), out.why("fresh sid")
    assert d["rejoinedWelcome"]["sid"] == rejoined["id"] and d["rejoinedEcho"] == ["again"], out.why("rejoined")
    assert d["aloneWelcome"]["nsp"] == "/custom" and d["aloneWelcome"]["auth"] is None, out.why("/custom alone")


@both_parsers
def test_dynamic_namespace(scenario: Scenario, group: str) -> None:
    """A regex namespace: connect /dyn-42 (twice: removed when empty, created again) and /dyn-7; /dyn-x is not one."""
    out = scenario(group, "dynamic")
    d = out.assert_clean()
    assert d["echo"] == ["dyn", 1, "two"] and d["echoAgain"] == ["dyn", "again"], out.why("handlers of the regex")
    assert decode(d["echoOther"]) == ["dyn", b"\x07"], out.why("another name matching the regex")
    assert d["bad"] == {"message": "Invalid namespace"}, out.why("a name the regex does not match")


@both_parsers
def test_auth(scenario: Scenario, group: str) -> None:
    """The CONNECT payload reaches the connect handler as sent; no auth is None (python-socketio's API)."""
    out = scenario(group, "auth")
    d = out.assert_clean()
    assert d["welcome"]["auth"] == d["sent"], out.why("auth round trip")
    assert d["welcomeNoAuth"]["auth"] is None, out.why("no auth")
    assert d["welcomeCustom"]["auth"] == {"where": "custom"} and d["welcomeCustom"]["nsp"] == "/custom"


@both_parsers
def test_refused(scenario: Scenario, group: str) -> None:
    """ConnectionRefusedError reaches the client as err.message / err.data; the connection stays usable."""
    out = scenario(group, "refused")
    d = out.assert_clean()
    refused = {"message": "refused by test", "data": {"reason": "test"}}
    assert d["error"] == {**refused, "isError": True}, out.why("connect_error in /")
    assert d["customError"] == refused, out.why("connect_error in /custom")
    assert d["connected"] is False and d["active"] is False, out.why("no retry after a server refusal")
    assert d["sameEngineAfter"] == ["after-refusal"], out.why("another namespace connects on that connection")
    assert d["eventsWhileRefused"] == [], out.why("a refused socket gets no event, not even disconnect")
    assert d["others"] == {
        "middleware": {"message": "refused by middleware", "data": ["data", 1]},
        "middlewareFalse": {"message": "Connection rejected by server", "data": "$undefined"},
        "handlerFalse": {"message": "Connection rejected by server", "data": "$undefined"},
    }, out.why("middleware refusals and connect handlers returning False")


@both_parsers
def test_invalid_namespace(scenario: Scenario, group: str) -> None:
    out = scenario(group, "invalid-namespace")
    d = out.assert_clean()
    assert d["error"] == {"message": "Invalid namespace", "data": "$undefined"}, out.why("connect_error")
    assert d["connected"] is False, out.why("not connected")
    assert d["afterAck"] == ["after-invalid"], out.why("the connection stays open for '/'")


# ------------------------------------------------------------------------------------------ acks, binary


@both_parsers
def test_acks(scenario: Scenario, group: str) -> None:
    """Acks both ways, with deadlines on both sides."""
    out = scenario(group, "acks")
    d = out.assert_clean()
    assert d["one"] == {"a": [1, 2]}, out.why("emitWithAck")
    assert d["several"] == ["x", 2, [3], {"four": 4}] and d["none"] == [], out.why("several / no ack arguments")
    assert d["timedOut"]["message"] == "operation has timed out", out.why("client-side ack timeout")
    assert 350 <= d["timedOut"]["ms"] < 2000, out.why("the client's 400 ms timeout")
    answer = {"answered": {"q": "why"}, "bin": b"\x09\x08\x07"}
    for key in ("serverCallAck", "serverCallEvent"):
        got = decode(d[key])
        assert got["ok"] is True and got["answer"] == answer, out.why(f"{key}: sio.call() got the client's answer")
        assert got["timeout"] == 3, out.why("the handler got the timeout argument")
    assert d["callbackAnswer"] == ["a", 2, {"p": "cb-payload"}], out.why("emit(callback=) gets every argument")
    for key in ("serverTimeoutAck", "serverTimeoutEvent"):
        got = d[key]
        assert got["ok"] is False and got["error"] == "AckTimeoutError", out.why(f"{key}: sio.call() times out")
        assert 0.25 <= got["elapsed"] < 1.0, out.why("after its 0.3 s timeout")
    assert d["afterLateAck"] == ["still-connected"] and d["connectedAtEnd"] is True, out.why("a late ack is ignored")


@both_parsers
@pytest.mark.parametrize("name", ["binary", "binary-polling"])
def test_binary(scenario: Scenario, group: str, name: str) -> None:
    """Binary nested in arguments both ways, byte for byte, in events and acks (both transports)."""
    out = scenario(group, name)
    d = out.assert_clean()
    expected_found = [
        {"path": "$[0].buf", "type": "bytes", "hex": CLIENT_BINARY["buf"].hex()},
        {"path": "$[0].list[0]", "type": "bytes", "hex": "0a141e"},
        {"path": "$[0].list[2].deep[0]", "type": "bytes", "hex": b"deep bytes".hex()},
        {"path": "$[0].arrayBuffer", "type": "bytes", "hex": "070809"},
        {"path": "$[0].all", "type": "bytes", "hex": bytes(range(256)).hex()},
        {"path": "$[0].empty", "type": "bytes", "hex": ""},
        {"path": "$[2][0]", "type": "bytes", "hex": "ff"},
    ]
    assert d["found"] == expected_found, out.why("the server decoded every binary as bytes, where it was")
    assert decode(d["echoed"]) == [CLIENT_BINARY, "second", [b"\xff"]], out.why("binary back in the ack")
    assert decode(d["serverBinary"]) == SERVER_BINARY, out.why("bytes / bytearray / memoryview from the server")
    assert binary_types(d["echoed"]) | binary_types(d["serverBinary"]) <= {"Buffer", "ArrayBuffer"}, out.why("types")
    assert d["eventLargeLength"] == 200_000, out.why("a 200 kB attachment")
    got = decode(d["callWithBinary"])
    assert got["ok"] is True and got["answer"] == {"got": b"\x05\x05", "reply": b"\x01\x00\x01"}, out.why("call")
    assert d["burstOrder"] == list(range(25)) and all(d["burstOk"]), out.why("a burst of binary events")
    assert d["largeText"] == {"length": 220_000, "same": True}, out.why("220 k characters of multi-byte text")


@both_parsers
def test_attachment_limit(scenario: Scenario, group: str) -> None:
    """10 attachments pass; 11 close the connection as the reference parser does (maxAttachments 10); msgpack
    carries binary inline, so it has no such limit."""
    out = scenario(group, "attachment-limit")
    d = out.assert_clean()
    assert d["ten"]["found"] == 10 and decode(d["ten"]["echoed"]) == [bytes([i, i]) for i in range(10)]
    eleven = d["eleven"]
    if group == "msgpack":
        assert eleven == {"acked": True, "found": 11, "reason": None, "serverReason": None}, out.why("msgpack: ok")
    else:
        assert eleven["acked"] is False and eleven["reason"] == "transport close", out.why("closed")
        assert eleven["serverReason"] == "parse error", out.why("the server's reason")


@both_parsers
def test_ack_ids(scenario: Scenario, group: str) -> None:
    """300 acks in flight at once over two multiplexed namespaces: each answer reaches its own emit."""
    out = scenario(group, "ack-ids")
    d = out.assert_clean()
    assert d["count"] == 300 and d["wrongCount"] == 0, out.why("answers matched to their ack ids")


def test_payload_limits(scenario: Scenario) -> None:
    """maxHttpBufferSize = 1 MB as the client understands it: its polling batches fit, base64 counts, a WebSocket
    frame of exactly 1 MB passes and one byte more closes the connection (all as with the reference)."""
    out = scenario("default", "payload-limits")
    d = out.assert_clean()
    assert d["pollingBurst"] is True and d["pollingBinaryBurst"] is True, out.why("3 MB / 2 MB bursts over polling")
    assert d["polling740k"] == {"echoed": True, "reason": None}, out.why("740 kB binary: ~987 kB of base64")
    assert d["polling760k"] == {"echoed": False, "reason": "transport error"}, out.why("760 kB binary: 413")
    assert d["ws1M"] == {"echoed": True, "reason": None}, out.why("a 1 MB frame is at the limit")
    assert d["ws1Mplus1"] == {"echoed": False, "reason": "transport close"}, out.why("1 MB + 1 is over it")


# ------------------------------------------------------------------------------------------ rooms


@both_parsers
def test_rooms(scenario: Scenario, group: str) -> None:
    """a: r1; b: r1 + r2; c: r2; d: r1 of "/custom". Each broadcast reaches exactly its targets."""
    out = scenario(group, "rooms")
    d = out.assert_clean()
    ids = d["ids"]
    assert d["transports"] == {"a": "websocket", "b": "polling", "c": "websocket", "d": "websocket"}
    r = d["rooms"]
    assert r["a"] == sorted([ids["a"], "r1"]) and r["c"] == sorted([ids["c"], "r2"]), out.why("join")
    assert r["b1"] == sorted([ids["b"], "r1"]) and r["b"] == sorted([ids["b"], "r1", "r2"]), out.why("join")
    assert r["d"] == sorted([ids["d"], "r1"]), out.why("join in /custom")

    def answers(names: str, payload: str) -> list[dict[str, str]]:
        return [{"from": n, "payload": payload} for n in names]

    def by_sender(got: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(got, key=lambda a: a["from"])

    assert by_sender(d["surveyAll"]) == answers("abc", "all"), out.why("emit_with_ack to everyone in /")
    assert d["surveyAllEvent"] == d["surveyAll"], out.why("the list is reported as an event too")
    assert by_sender(d["surveyR2"]) == answers("bc", "r2"), out.why("emit_with_ack to r2")
    assert d["surveyR1ExceptR2"] == answers("a", "x"), out.why("emit_with_ack to r1 except r2")
    assert d["surveySilent"] == answers("b", "silent"), out.why("the answers in time, c being silent")
    assert 450 <= d["surveySilentMs"] < 2500, out.why("returned at the 0.5 s deadline")

    none: list[Any] = []
    assert d["toR1Ack"] == "sent"
    hello = [["r1", "hello r1", b"\x01"]]
    assert decode(d["afterToR1"]) == {"a": hello, "b": hello, "c": none, "d": none}, out.why("to r1")
    only_a = [["r1", "r1 but not r2"]]
    assert d["afterToR1ExceptR2"] == {"a": only_a, "b": none, "c": none, "d": none}, out.why("r1 except r2")
    assert d["bLeavesR1"] == sorted([ids["b"], "r2"]), out.why("leave")
    assert d["afterLeave"] == {"a": [["r1", "after b left"]], "b": none, "c": none, "d": none}, out.why("left")
    assert decode(d["skipSender"]) == {"a": none, "b": [["r1", "not to a", b"\x02\x03"]], "c": none, "d": none}
    assert d["toSid"] == {"a": none, "b": [[ids["b"], "private to b"]], "c": none, "d": none}, out.why("sid room")
    assert d["customR1"] == {"a": none, "b": none, "c": none, "d": [["r1", "custom r1"]]}, out.why("namespaces")


# ------------------------------------------------------------------------------------------ disconnects


@both_parsers
def test_server_disconnect(scenario: Scenario, group: str) -> None:
    """sio.disconnect(sid): "io server disconnect" for that namespace only, no reconnection."""
    out = scenario(group, "server-disconnect")
    d = out.assert_clean()
    assert d["reason"] == "io server disconnect", out.why("client-side reason")
    assert d["active"] is False and d["connected"] is False, out.why("a server disconnect is final")
    assert d["customAfter"] == ["custom still here"], out.why("/custom on the same connection is untouched")
    assert d["serverReason"] == "server disconnect", out.why("the server's disconnect handler reason")
    assert d["pendingReason"] == "io server disconnect", out.why("second client")
    assert d["pendingAck"]["message"] == "socket has been disconnected", out.why("its pending ack fails at once")


@both_parsers
def test_close_transport(scenario: Scenario, group: str) -> None:
    """The server closes the Engine.IO session: every namespace on it sees "transport close"."""
    out = scenario(group, "close-transport")
    d = out.assert_clean()
    for transport in ("websocket", "polling"):
        got = d[transport]
        assert got["reason"] == got["customReason"] == "transport close", out.why(f"{transport}: client reason")
        assert got["serverReason"] == "server disconnect", out.why(f"{transport}: server reason")


def test_heartbeat(scenario: Scenario) -> None:
    """Healthy clients survive many short heartbeats over both transports."""
    out = scenario("heartbeat", "heartbeat")
    d = out.assert_clean()
    assert d["pings"]["ws"] >= 3 and d["pings"]["polling"] >= 3, out.why("a ping every 300 ms")
    assert d["connected"] == {"ws": True, "polling": True}, out.why("still connected")
    assert d["acks"] == {"ws": 1, "polling": 2}, out.why("still working")
    assert d["disconnects"] == {"ws": [], "polling": []}, out.why("no disconnect")


def test_ping_timeout_client_side(scenario: Scenario) -> None:
    """The client sees no ping for pingInterval + pingTimeout: it gives up with "ping timeout"."""
    out = scenario("heartbeat", "ping-timeout-client")
    d = out.assert_clean()
    assert (d["handshake"]["pingInterval"], d["handshake"]["pingTimeout"]) == (300, 300), out.why("ms, not 0")
    assert d["reason"] == "ping timeout", out.why("client-side reason")
    assert d["dropped"] >= 1 and 400 <= d["ms"] < 2000, out.why("after about 600 ms")
    assert d["serverReason"] == "transport close", out.why("the client closed the transport")


def test_ping_timeout_server_side(scenario: Scenario) -> None:
    """A client that never answers pings: the server closes it pingTimeout after its ping ("ping timeout");
    the client sees its transport closed."""
    out = scenario("heartbeat", "ping-timeout-server")
    d = out.assert_clean()
    for transport in ("websocket", "polling"):
        got = d[transport]
        assert got["serverReason"] == "ping timeout", out.why(f"{transport}: server reason")
        assert got["reason"] == "transport close", out.why(f"{transport}: client reason")
        assert got["pings"] == 1 and 450 <= got["ms"] < 2000, out.why(f"{transport}: one ping, ~600 ms")


def test_server_killed(scenario: Scenario) -> None:
    """SIGKILL: the WebSocket client sees "transport close" (the poll that fails: "transport error")."""
    out = scenario("kill", "kill")
    d = out.assert_clean()
    assert d["websocket"]["reason"] == "transport close", out.why("websocket")
    assert d["polling"]["reason"] in ("transport error", "transport close"), out.why("polling")


def test_server_shutdown(scenario: Scenario) -> None:
    """SIGTERM: a graceful shutdown closes every session at once ("transport close") and exits 0."""
    out = scenario("shutdown", "shutdown")
    d = out.assert_clean()
    assert d["websocket"]["reason"] == "transport close", out.why("websocket")
    assert d["polling"]["reason"] == "transport close", out.why("polling gets a close packet")
    assert d["ms"] < 2000, out.why("at once")
    # uvicorn ends a graceful shutdown by raising the signal again with its default action (exit -15)
    clean = (0, -15) if out.server.options.get("front", "").startswith("uvicorn") else (0,)
    assert out.server.wait_exit(5) in clean, out.why("the server exits cleanly")
    assert "server shutting down" in out.server.output(), out.why("disconnect handlers ran with the reason")


@both_parsers
def test_reconnect(scenario: Scenario, group: str) -> None:
    """After the server closes the connection the client reconnects by itself: new sids, auth sent again."""
    out = scenario(group, "reconnect")
    d = out.assert_clean()
    assert d["reason"] == "transport close" and d["attempts"] == 1, out.why("one attempt")
    assert d["fresh"] is True and d["recovered"] is False, out.why("a new session (no state recovery)")
    assert d["welcomeAgain"]["auth"] == {"n": 1}, out.why("the CONNECT carries the auth again")
    assert d["echo"] == {"main": ["back"], "custom": ["back"]}, out.why("both namespaces work again")


def test_connect_timeout(scenario: Scenario) -> None:
    """An Engine.IO connection that connects no namespace is closed after connect_timeout (0.5 s here)."""
    out = scenario("heartbeat", "connect-timeout")
    d = out.assert_clean()
    assert d["reason"] == "transport close", out.why("closed by the server")
    assert 400 <= d["ms"] < 2500, out.why("after about 0.5 s")
