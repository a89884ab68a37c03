"""python-socketio's aiohttp example apps, ported by changing the import (``examples/``: the same handlers and
calls as ``examples/server/aiohttp``), driven by python-socketio's client, sioclient and the official
JavaScript client over each transport. The same steps against the same app on python-socketio itself
give the reference transcript, so the comparison is with python-socketio, not with a guess.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio as python_socketio

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))

import sioclient  # noqa: E402

from tests._support import node, tools  # noqa: E402
from tests._support.ports import free_port  # noqa: E402
from tests._support.procs import Process, python_env, start_all  # noqa: E402

_spec = importlib.util.spec_from_file_location("python_socketio_example_scenario", EXAMPLES / "scenario.py")
assert _spec is not None and _spec.loader is not None
scenario = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenario)

TRANSPORTS = {"polling then websocket": None, "websocket": ["websocket"], "polling": ["polling"]}
CLIENTS: dict[str, Callable[[], Any]] = {
    "python-socketio": lambda: python_socketio.AsyncClient(reconnection=False),
    "sioclient": lambda: sioclient.AsyncClient(reconnection=False),
}


#: aiohttp's ``web.run_app`` says where it listens: the ready line of an example app
RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class App(Process):
    """An example app in a subprocess, as its README runs it (``python app.py``)."""

    def __init__(self, script: str, impl: str, logdir: Path) -> None:
        env = python_env(EXAMPLE_IMPL=impl, PORT=str(free_port()), EXAMPLE_TICK="0.5")
        super().__init__([sys.executable, str(EXAMPLES / script)], log_path=logdir / f"{script}-{impl}.log",
                         env=env, cwd=EXAMPLES, ready=RUNNING, name=f"{script} on {impl}")


@pytest.fixture(scope="module", params=["sioserver", "python-socketio"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def apps(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, App]]:
    logdir = tmp_path_factory.mktemp("examples")
    started = {name: App(name + ".py", impl, logdir) for name in ("app", "fiddle")}
    start_all(list(started.values()))
    yield started
    for app in started.values():
        app.stop()


def slow_reference(impl: str, client: str, transport: str) -> None:
    if impl == "python-socketio" and client == "python-socketio" and transport == "polling":
        # the reference run of python-socketio with its own client over polling only takes 30 s: the
        # client's disconnect() waits for its pending GET, which the server answers at the next ping
        tools.slow("30 s on python-socketio itself; the other reference runs check the transcript")


def plain(transcript: Any) -> Any:
    """Tuples as lists, as JSON has them (the JavaScript client's transcript comes as JSON)."""
    return json.loads(json.dumps(transcript))


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_app_with_python_clients(apps: dict[str, App], impl: str, client: str, transport: str) -> None:
    slow_reference(impl, client, transport)
    seen = await scenario.app_scenario(CLIENTS[client], apps["app"].url, TRANSPORTS[transport])
    assert plain(seen) == plain(scenario.APP_TRANSCRIPT), apps["app"].context()


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_fiddle_and_latency_with_python_clients(apps: dict[str, App], impl: str, client: str,
                                                      transport: str) -> None:
    slow_reference(impl, client, transport)
    seen = await scenario.fiddle_scenario(CLIENTS[client], apps["fiddle"].url, TRANSPORTS[transport])
    assert plain(seen) == plain(scenario.FIDDLE_TRANSCRIPT)
    assert "connected auth={'token': 't'} sid=" in apps["fiddle"].output()


@pytest.mark.parametrize("transport", ["default", "websocket", "polling"])
@pytest.mark.parametrize(("script", "expected"), [("app", scenario.APP_TRANSCRIPT),
                                                  ("fiddle", scenario.FIDDLE_TRANSCRIPT)])
def test_with_the_javascript_client(apps: dict[str, App], interop_node_modules: Path, script: str, expected: Any,
                                    transport: str) -> None:
    run = node.run(EXAMPLES / "examples_client.mjs", apps[script].url, script, transport, timeout=90,
                   context=apps[script].context())
    result = run.last()
    assert result["ok"], run.context() + "\n" + apps[script].context()
    assert result["seen"] == plain(expected)


def test_the_page_is_served(apps: dict[str, App]) -> None:
    with urllib.request.urlopen(apps["app"].url + "/", timeout=5) as resp:
        assert resp.status == 200 and b"python-socketio example app" in resp.read()
