"""python-socketio's example apps for asyncio servers, ported by changing the import (``examples/``: the
same handlers and calls as its ``examples/server/aiohttp`` and ``examples/server/asgi``), driven by
python-socketio's client, sioclient and the official JavaScript client over each transport, and their
pages fetched. The same steps against the same app on python-socketio itself give the reference
transcript, so the comparison is with python-socketio, not with a guess.

Each app runs as its README runs it: ``python app.py`` (aiohttp's ``web.run_app``; the ASGI and Litestar
fiddles' ``uvicorn.run``) or ``uvicorn module:app`` (the ASGI app, the FastAPI fiddle and, from its directory
after ``manage.py migrate`` into a temp database, the Django project's ``core.asgi:application``), the port
from the environment.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from tests._support.wait import wait_until  # noqa: E402

_spec = importlib.util.spec_from_file_location("python_socketio_example_scenario", EXAMPLES / "scenario.py")
assert _spec is not None and _spec.loader is not None
scenario = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenario)

TRANSPORTS = {"polling then websocket": None, "websocket": ["websocket"], "polling": ["polling"]}
CLIENTS: dict[str, Callable[[], Any]] = {
    "python-socketio": lambda: python_socketio.AsyncClient(reconnection=False),
    "sioclient": lambda: sioclient.AsyncClient(reconnection=False),
}

#: a whole scenario: a reply that never comes fails its step after scenario.STEP, but app.py's ticks (every
#: 0.5 s, skipped while waiting) would keep a step waiting for ever
SCENARIO_TIMEOUT = 60.0

#: aiohttp's ``web.run_app`` says where it listens: the ready line of an aiohttp example app
RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
#: uvicorn's, with the port it bound (asked for port 0)
UVICORN_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

#: script -> how its README runs it: ``python <script>.py`` or ``uvicorn <script>:<app>``
SERVED: dict[str, str] = {
    "app": "python",
    "fiddle": "python",
    "asgi_app": "uvicorn asgi_app:app",
    "asgi_fiddle": "python",
    "asgi_fastapi_fiddle": "uvicorn asgi_fastapi_fiddle:combined_asgi_app",
    "asgi_litestar_fiddle": "python",
    "asgi_django": "uvicorn core.asgi:application",
}
#: the apps of app.py's shape (rooms, broadcasts, the background task) and of fiddle.py's and latency.py's
APP_SCRIPTS = ["app", "asgi_app"]
FIDDLE_SCRIPTS = ["fiddle", "asgi_fiddle", "asgi_fastapi_fiddle", "asgi_litestar_fiddle"]
#: the Django project of django_example's shape (its own handlers and scenario), served from its directory
DJANGO_SCRIPTS = ["asgi_django"]
#: what the fiddles' connect handler prints for the scenario's client
AUTH_LINE = "connected auth={'token': 't'} sid="
#: python-socketio's ASGI app.py names two events with a space where its aiohttp one has an underscore
ASGI_NAMES = {"close_room": "close room", "disconnect_request": "disconnect request"}


class App(Process):
    """An example app in a subprocess, as its README runs it."""

    def __init__(self, script: str, impl: str, logdir: Path) -> None:
        how = SERVED[script]
        env = python_env(EXAMPLE_IMPL=impl, EXAMPLE_TICK="0.5")
        if how == "python" and not script.startswith("asgi_"):
            env["PORT"] = str(free_port())  # aiohttp's run_app prints the port it was given, not the bound one
            argv, ready = [sys.executable, str(EXAMPLES / f"{script}.py")], RUNNING
        elif how == "python":
            env["PORT"] = "0"
            argv, ready = [sys.executable, str(EXAMPLES / f"{script}.py")], UVICORN_RUNNING
        else:  # uvicorn's command line, its options from the environment (UVICORN_HOST, UVICORN_PORT)
            env.update(UVICORN_HOST="127.0.0.1", UVICORN_PORT="0")
            argv, ready = [sys.executable, "-m", *how.split()], UVICORN_RUNNING
        cwd = EXAMPLES
        if script in DJANGO_SCRIPTS:  # as its README: the database migrated, then the server, in the project
            cwd = EXAMPLES / script
            env["DJANGO_DB"] = str(logdir / f"{script}-{impl}.sqlite3")
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=cwd, env=env, check=True,
                           timeout=60)
        super().__init__(argv, log_path=logdir / f"{script}-{impl}.log", env=env, cwd=cwd, ready=ready,
                         name=f"{script} on {impl}")


class AsgiNames:
    """A client whose ``emit`` sends the ASGI app.py's names for scenario.py's two underscored events."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def emit(self, event: str, *args: Any, **kwargs: Any) -> Any:
        return await self.client.emit(ASGI_NAMES.get(event, event), *args, **kwargs)


@pytest.fixture(scope="module", params=["sioserver", "python-socketio"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def apps(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, App]]:
    logdir = tmp_path_factory.mktemp("examples")
    started = {name: App(name, impl, logdir) for name in SERVED}
    start_all(list(started.values()))
    yield started
    with ThreadPoolExecutor(len(started)) as pool:  # each may take its grace period to stop: all at once
        list(pool.map(lambda app: app.stop(), started.values()))


def slow_reference(impl: str, client: str, transport: str) -> None:
    if impl == "python-socketio" and client == "python-socketio" and transport == "polling":
        # the reference run of python-socketio with its own client over polling only takes 30 s: the
        # client's disconnect() waits for its pending GET, which the server answers at the next ping
        tools.slow("30 s on python-socketio itself; the other reference runs check the transcript")


async def printed(app: App, line: str, before: int, more: int) -> None:
    """``app`` printed ``line`` ``more`` times since it had printed it ``before`` times (the handlers print
    before they answer, but the log is read by another thread: a poll)."""
    await wait_until(lambda: app.output().count(line) >= before + more, timeout=5,
                     what=lambda: f"{more} more {line!r} from the handlers\n{app.context()}")


def plain(transcript: Any) -> Any:
    """Tuples as lists, as JSON has them (the JavaScript client's transcript comes as JSON)."""
    return json.loads(json.dumps(transcript))


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("script", APP_SCRIPTS)
async def test_app_with_python_clients(apps: dict[str, App], impl: str, script: str, client: str,
                                       transport: str) -> None:
    slow_reference(impl, client, transport)
    before = apps[script].output().count("Client disconnected")
    make = CLIENTS[client]
    if script.startswith("asgi_"):
        make = lambda: AsgiNames(CLIENTS[client]())  # noqa: E731
    seen = await asyncio.wait_for(scenario.app_scenario(make, apps[script].url, TRANSPORTS[transport]),
                                  SCENARIO_TIMEOUT)
    assert plain(seen) == plain(scenario.APP_TRANSCRIPT), apps[script].context()
    await printed(apps[script], "Client disconnected", before, 2)  # a, that the server disconnected, and b


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("script", FIDDLE_SCRIPTS)
async def test_fiddle_and_latency_with_python_clients(apps: dict[str, App], impl: str, script: str, client: str,
                                                      transport: str) -> None:
    slow_reference(impl, client, transport)
    before = apps[script].output().count(AUTH_LINE)
    seen = await asyncio.wait_for(scenario.fiddle_scenario(CLIENTS[client], apps[script].url, TRANSPORTS[transport]),
                                  SCENARIO_TIMEOUT)
    assert plain(seen) == plain(scenario.FIDDLE_TRANSCRIPT), apps[script].context()
    await printed(apps[script], AUTH_LINE, before, 1)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize("script", DJANGO_SCRIPTS)
async def test_django_with_python_clients(apps: dict[str, App], impl: str, script: str, client: str,
                                          transport: str) -> None:
    """The handlers write to and read from the ORM (``sync_to_async``) inside Django's ASGI app's process."""
    slow_reference(impl, client, transport)
    before = apps[script].output().count("SocketIO disconnect")
    seen = await asyncio.wait_for(scenario.django_scenario(CLIENTS[client], apps[script].url, TRANSPORTS[transport]),
                                  SCENARIO_TIMEOUT)
    assert plain(seen) == plain(scenario.DJANGO_TRANSCRIPT), apps[script].context()
    await printed(apps[script], "SocketIO disconnect", before, 2)


@pytest.mark.parametrize("transport", ["default", "websocket", "polling"])
@pytest.mark.parametrize("script", APP_SCRIPTS + FIDDLE_SCRIPTS + DJANGO_SCRIPTS)
def test_with_the_javascript_client(apps: dict[str, App], interop_node_modules: Path, script: str,
                                    transport: str) -> None:
    if script in APP_SCRIPTS:
        js_scenario, expected = ("asgi-app" if script.startswith("asgi_") else "app"), scenario.APP_TRANSCRIPT
    elif script in DJANGO_SCRIPTS:
        js_scenario, expected = "django", scenario.DJANGO_TRANSCRIPT
    else:
        js_scenario, expected = "fiddle", scenario.FIDDLE_TRANSCRIPT
    run = node.run(EXAMPLES / "examples_client.mjs", apps[script].url, js_scenario, transport, timeout=90,
                   context=apps[script].context())
    result = run.last()
    assert result["ok"], run.context() + "\n" + apps[script].context()
    assert result["seen"] == plain(expected)


def fetch(url: str) -> tuple[int, str, bytes]:
    """Status, media type (without parameters) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get_content_type(), err.read()


def test_the_page_is_served(apps: dict[str, App]) -> None:
    with urllib.request.urlopen(apps["app"].url + "/", timeout=5) as resp:
        assert resp.status == 200 and b"python-socketio example app" in resp.read()


#: what the ASGI apps serve beside Socket.IO: path -> (status, media type, body; None: the file's bytes)
ASGI_PAGES: dict[str, dict[str, tuple[int, set[str], bytes | None]]] = {
    "asgi_app": {"/": (200, {"text/html"}, (EXAMPLES / "app.html").read_bytes()),
                 "/nothing-here": (404, {"text/plain"}, b"Not Found")},
    "asgi_fiddle": {"/": (200, {"text/html"}, (EXAMPLES / "asgi_fiddle.html").read_bytes()),
                    "/static/fiddle.js": (200, {"text/javascript", "application/javascript"},
                                          (EXAMPLES / "asgi_static" / "fiddle.js").read_bytes()),
                    "/static/missing.js": (404, {"text/plain"}, b"Not Found")},
    "asgi_fastapi_fiddle": {"/": (200, {"text/html"}, (EXAMPLES / "asgi_fiddle.html").read_bytes()),
                            "/static/fiddle.js": (200, {"text/javascript", "application/javascript"},
                                                  (EXAMPLES / "asgi_static" / "fiddle.js").read_bytes()),
                            "/hello": (200, {"application/json"}, b'{"message":"Hello, World!"}'),
                            "/nothing-here": (404, {"application/json"}, b'{"detail":"Not Found"}')},
    "asgi_litestar_fiddle": {"/": (200, {"text/html"}, (EXAMPLES / "asgi_fiddle.html").read_bytes()),
                             "/static/fiddle.js": (200, {"text/javascript", "application/javascript"},
                                                   (EXAMPLES / "asgi_static" / "fiddle.js").read_bytes()),
                             "/hello": (200, {"application/json"}, b'{"message":"Hello, World!"}'),
                             "/static/missing.js": (404, {"application/json"},
                                                    b'{"status_code":404,"detail":"no file or directory match the'
                                                    b' path missing.js was found"}'),
                             "/nothing-here": (404, {"application/json"},
                                               b'{"status_code":404,"detail":"Not Found"}')},
}


@pytest.mark.parametrize("script", list(ASGI_PAGES))
def test_the_asgi_pages_are_served(apps: dict[str, App], script: str) -> None:
    """The static files (ASGIApp's) and the FastAPI and Litestar apps' routes, static files and 404s, as python-socketio serves them."""
    for path, (status, media_types, body) in ASGI_PAGES[script].items():
        got_status, got_type, got_body = fetch(apps[script].url + path)
        assert (got_status, got_body) == (status, body), (path, apps[script].context())
        assert got_type in media_types, (path, got_type)


#: what Django's ASGI app serves beside Socket.IO: path -> (status, media type, a part of the page); its pages
#: carry a CSRF token, so no whole body. The admin's index redirects to its login page (urllib follows).
DJANGO_PAGES: dict[str, tuple[int, str, bytes]] = {
    "/admin/": (200, "text/html", b"<title>Log in | Django site admin</title>"),
    "/admin/login/": (200, "text/html", b'name="csrfmiddlewaretoken"'),
    "/nothing-here": (404, "text/html", b"<h1>Not Found</h1>"),
}


@pytest.mark.parametrize("script", DJANGO_SCRIPTS)
def test_the_django_pages_are_served(apps: dict[str, App], script: str) -> None:
    """The Django project's routes (its admin, migrated into the temp database) and its 404, through ASGIApp."""
    for path, (status, media_type, part) in DJANGO_PAGES.items():
        got_status, got_type, got_body = fetch(apps[script].url + path)
        assert (got_status, got_type) == (status, media_type), (path, apps[script].context())
        assert part in got_body, (path, got_body[:500])
