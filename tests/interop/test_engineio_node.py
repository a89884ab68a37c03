"""Engine.IO interop with the official Node client (engine.io-client 6.6), one fresh echo server per scenario.

eio_client_scenarios.mjs checks what the reference server (Node engine.io 6.6) does and names every check it
fails; these tests assert on its JSON result. Checks that python-engineio itself fails are listed in
``LAX["python-engineio"]`` with the reason: relaxed for that implementation only, never for sioserver.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.interop

# Named checks that a lax implementation may fail: (scenario, fnmatch pattern of the check) -> why.
# Every entry is a python-engineio 4.15 (aiohttp mode) bug or deviation from the reference, seen on the wire.
LAX: dict[str, dict[tuple[str, str], str]] = {
    "python-engineio": {
        # It json.loads() every text message that parses as JSON and hands the handler the parsed value, so
        # '{"a": 1, ...}' comes back re-serialised ('{"a":1,...}'), not as sent.
        ("*", "*.echo.json-like"): "decodes JSON-looking text messages",
        ("*", "*.burst.json-like"): "decodes JSON-looking text messages",
        # It reads a POST body with aiohttp's StreamReader.read(CONTENT_LENGTH), which returns what is
        # buffered, not the whole body: a 1 MiB text comes back cut (~200 KB), a 1 MiB binary fails to
        # base64-decode and is dropped (logged "post request handler error").
        ("large", "polling.*"): "truncates large POST bodies",
        # On ping timeout it answers the pending GET with 400 instead of a close packet ("transport error"),
        # and it checks for timeouts on a coarse timer (~300 ms late seen).
        ("heartbeat", "polling-no-pong.reason"): "ends a timed-out polling session with HTTP 400",
        # disconnect() on a WebSocket session sends a "1" packet and leaves the socket open; engine.io-client
        # ignores "1" over WebSocket (the reference just closes the socket), so the client never sees a close.
        ("server-close", "websocket.*"): "does not close the WebSocket on disconnect()",
        ("server-close", "upgraded.*"): "does not close the WebSocket on disconnect()",
        # An oversize POST: it closes the session (close packet on the pending GET, so the client sees
        # "transport close" first) and answers the POST with 400, where the reference answers 413.
        ("oversize", "polling-over*.reason"): "closes the session on an oversize POST",
        ("oversize", "polling-over*.status"): "refuses an oversize POST with 400, not 413",
        # aiohttp's max_msg_size refuses a message of exactly max_http_buffer_size bytes (1009); the
        # reference (ws maxPayload) accepts it.
        ("oversize", "websocket-at-limit.*"): "refuses a WebSocket message exactly at the limit",
    },
    "sioserver": {},
}


def lax_for(impl: str, scenario: str, check: str) -> str | None:
    """Why ``impl`` may fail ``check`` in ``scenario``, or None when it must pass."""
    for (scen, pattern), why in LAX.get(impl, {}).items():
        if fnmatch.fnmatchcase(scenario, scen) and fnmatch.fnmatchcase(check, pattern):
            return why
    return None


def explain(run: Any, server: Any) -> str:
    result = json.dumps(run.result, indent=1, default=str)
    if len(result) > 12000:
        result = result[:12000] + "\n[…]"
    return (
        f"\nnode scenario {run.scenario!r} exit {run.returncode}\n--- result ---\n{result}\n"
        f"--- node stderr ---\n{run.stderr[-3000:]}\n{server.context()}"
    )


def strict_failures(run: Any, impl: str) -> list[dict[str, Any]]:
    return [f for f in run.failures if lax_for(impl, run.scenario, str(f.get("check"))) is None]


def run_scenario(
    eio_server: Callable[..., Any],
    node_scenario: Callable[..., Any],
    impl: str,
    scenario: str,
    extra: list[str] | None = None,
    **server_options: Any,
) -> tuple[Any, Callable[[str], str], Callable[[str], bool]]:
    """Starts a fresh server, runs the scenario, asserts that no strict check failed.

    Returns (run, why, strict): ``why(msg)`` builds a failure message with the whole result and the server's
    log; ``strict(check)`` tells whether ``check`` must hold for this impl (False where it is relaxed).
    """
    server = eio_server(**server_options)
    run = node_scenario(server, scenario, extra=extra)

    def why(what: str) -> str:
        return f"{what}{explain(run, server)}"

    def strict(check: str) -> bool:
        return lax_for(impl, scenario, check) is None

    assert run.result.get("scenario") == scenario, why("result is for another scenario")
    bad = strict_failures(run, impl)
    assert not bad, why(f"failed checks: {json.dumps(bad, default=str)}")
    # the exit code agrees with the result: 0 only when every check passed
    assert (run.returncode == 0) == (not run.failures), why("exit code disagrees with the failures list")
    return run, why, strict


ECHO_NAMES = ["ascii", "unicode", "empty", "b-prefixed-text", "digits", "json-like", "binary-256", "binary-1"]


def bad_echoes(case: dict[str, Any], prefix: str, strict: Callable[[str], bool]) -> list[str]:
    """Echo-set messages that did not come back intact (the impl's relaxed ones excepted)."""
    echo = case.get("echo", {})
    missing = [n for n in ECHO_NAMES if n not in echo]
    wrong = [n for n in ECHO_NAMES if n in echo and not echo[n]["ok"] and strict(f"{prefix}.echo.{n}")]
    burst = [n for n in echo.get("burstMismatches", ["<none>"]) if strict(f"{prefix}.burst.{n}")]
    return missing + wrong + burst


def test_polling(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "polling")
    case = run.cases["polling"]
    assert case["transportAtOpen"] == "polling" and case["transport"] == "polling", why("transport")
    assert case["handshake"]["upgrades"] == ["websocket"], why("a polling session offers the websocket upgrade")
    assert not bad_echoes(case, "polling", strict), why("echo (text stays text, bytes stay bytes)")
    assert all(v["via"] == "polling" for k, v in case["echo"].items() if k != "burstMismatches"), why("via")
    assert case["readyState"] == "open" and case["closed"] is None, why("still open")


def test_websocket(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "websocket")
    case = run.cases["websocket"]
    assert case["transportAtOpen"] == "websocket" and case["transport"] == "websocket", why("transport")
    assert case["handshake"]["upgrades"] == [], why("a WebSocket-only session offers no upgrade")
    assert not bad_echoes(case, "websocket", strict), why("echo (text stays text, bytes stay bytes)")
    assert case["readyState"] == "open" and case["closed"] is None, why("still open")


def test_upgrade(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "upgrade")
    case = run.cases["upgrade"]
    assert case["transportAtOpen"] == "polling", why("starts on polling")
    assert case["upgradeEvent"] == "websocket", why("the client's upgrade event names the websocket transport")
    assert case["finalTransport"] == "websocket", why("ends on websocket")
    events = [e[0] for e in case["events"]]
    assert "upgrading" in events and events.index("upgrading") < events.index("upgrade"), why("upgrading, upgrade")
    assert "upgradeError" not in events, why("no upgradeError")
    # messages sent before and during the upgrade all came back intact and in order
    early = [e["name"] for e in case["early"]]
    assert early == ["before-text", "before-binary", "during-text", "during-binary"], why("echoes across upgrade")
    assert all(e["ok"] for e in case["early"]), why("echoes across the upgrade")
    assert not bad_echoes(case, "upgrade.after", strict), why("echo after the upgrade")
    assert all(v["via"] == "websocket" for k, v in case["echo"].items() if k != "burstMismatches"), why("via")
    assert case["readyState"] == "open" and case["closed"] is None, why("still open")


def test_large(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    # 1 MiB each way: a binary over polling travels as base64 (~1.4 MB body), hence the 3 MB limit
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "large", max_http_buffer_size=3_000_000)
    for name in ("polling", "websocket"):
        case = run.cases[name]
        assert case["handshake"]["maxPayload"] == 3_000_000, why(f"{name}: maxPayload in the handshake")
        if not strict(f"{name}.text"):
            continue
        assert case["transport"] == name, why(f"{name}: transport")
        for kind in ("text", "binary"):
            assert case[kind]["ok"], why(f"{name}: 1 MiB {kind} echo")
            assert case[kind]["sent"] >= 1 << 20, why(f"{name}: {kind} size")
        assert case["readyState"] == "open" and case["closed"] is None, why(f"{name}: still open")


# (ping_interval, ping_timeout, idle ms) per impl. python-engineio announces int(interval) * 1000 as
# pingInterval (0.3 s becomes 0, and engine.io-client then times out after pingTimeout alone), so it is
# validated with a whole-second interval; sioserver must get the sub-second case right.
HEARTBEAT = {"sioserver": (0.3, 0.3, 1500), "python-engineio": (1.0, 0.3, 2500)}


def test_heartbeat(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    interval, timeout, idle_ms = HEARTBEAT[impl]
    run, why, strict = run_scenario(
        eio_server,
        node_scenario,
        impl,
        "heartbeat",
        extra=["--idle-ms", str(idle_ms)],
        ping_interval=interval,
        ping_timeout=timeout,
    )
    interval_ms, timeout_ms = round(interval * 1000), round(timeout * 1000)
    expected_pings = idle_ms // interval_ms
    for name in ("polling", "websocket"):
        case = run.cases[name]
        # exact integers in ms: a sub-second value must not be rounded to 0 or to whole seconds
        assert case["handshake"]["pingInterval"] == interval_ms, why(f"{name}: pingInterval")
        assert case["handshake"]["pingTimeout"] == timeout_ms, why(f"{name}: pingTimeout")
        # the client counts the server's pings through its "ping" event; allow for jitter on a busy CI box
        assert max(1, expected_pings - 2) <= case["pings"] <= expected_pings + 2, why(f"{name}: pings while idle")
        assert all(g >= interval_ms // 2 for g in case["pingGaps"]), why(f"{name}: pings about an interval apart")
        assert case["stillOpen"] and case["closed"] is None, why(f"{name}: an idle client answering pings stays open")
        assert case["echoAfterIdle"], why(f"{name}: echo after idling")
    for name in ("polling-no-pong", "websocket-no-pong"):
        case = run.cases[name]
        # the client never answers (and its own timer is off): the server must end the session
        assert case["closed"] is not None, why(f"{name}: closed by the server")
        if strict(f"{name}.reason"):
            assert case["closed"]["reason"] == "transport close", why(f"{name}: close reason")
        assert case["pings"] == 1, why(f"{name}: no further ping once one went unanswered")
        # the reference closes pingTimeout after the unanswered ping (measured 300-305 ms for 300): allow for
        # scheduling, but a server that gives extra slack (another interval, a coarse timer) is wrong
        late = case["closeAfterLastPingMs"]
        slack = 300 if strict(f"{name}.reason") else 300 + interval_ms
        assert timeout_ms // 2 <= late <= timeout_ms + slack, why(f"{name}: closed {late} ms after the ping")


def test_server_close(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "server-close")
    transports = {"polling": "polling", "websocket": "websocket", "upgraded": "websocket"}
    for name, transport in transports.items():
        case = run.cases[name]
        assert case["transportAtClose"] == transport, why(f"{name}: transport when closing")
        if not strict(f"{name}.reason"):
            continue
        # engine.io-client reports a server-side close as "transport close" on every transport
        assert case["reason"] == "transport close", why(f"{name}: close reason")
        assert case["errors"] == [], why(f"{name}: no error event")
        assert case["closeMs"] < 2000, why(f"{name}: closed promptly")
        expected = "transport closed by the server" if transport == "polling" else "websocket connection closed"
        # polling: the close packet "1" on the pending GET; websocket: the socket itself is closed
        assert case["description"]["description"] == expected, why(f"{name}: close description")


def test_oversize(eio_server: Callable[..., Any], node_scenario: Callable[..., Any], impl: str) -> None:
    run, why, strict = run_scenario(eio_server, node_scenario, impl, "oversize", max_http_buffer_size=1000)
    for name in ("polling-at-limit", "websocket-at-limit"):
        case = run.cases[name]
        assert case["maxPayload"] == 1000, why(f"{name}: maxPayload")
        if strict(f"{name}.echo"):
            assert case["echoOk"] and case["closed"] is None, why(f"{name}: a message exactly at the limit passes")
    for name in ("polling-over", "polling-over-binary"):
        case = run.cases[name]
        # never a hang and never a silent cut: the connection ends
        assert case["closed"] is not None, why(f"{name}: the connection ends")
        assert "echoed" not in case, why(f"{name}: an oversize message is not delivered")
        if strict(f"{name}.status"):
            # the POST is refused: an "error" event with the HTTP status, then close "transport error"
            assert case["closed"]["reason"] == "transport error", why(f"{name}: close reason")
            assert case["errors"] and case["errors"][0]["message"] == "xhr post error", why(f"{name}: error")
            assert case["httpStatus"] == 413, why(f"{name}: HTTP status")
    for name in ("websocket-over", "websocket-over-binary"):
        case = run.cases[name]
        assert case["closed"] is not None, why(f"{name}: the connection ends")
        assert "echoed" not in case, why(f"{name}: an oversize message is not delivered")
        assert case["closed"]["reason"] == "transport close", why(f"{name}: close reason")
        assert case["wsCloseCode"] == 1009, why(f"{name}: WebSocket close code 1009 (message too big)")
