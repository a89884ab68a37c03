"""External tools the tests need (node, npm, redis-server, chromium, nginx, wstest).

``./scripts/test.sh`` installs every one of them. Under ``CI=true`` a missing tool fails the test that
needs it; elsewhere the test is skipped with the reason (and how to install it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """A tool is not there: fail under CI, skip elsewhere; ``what`` says what and how to get it."""
    message = f"{what} (./scripts/test.sh installs everything the tests need)"
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def slow(what: str) -> None:
    """A documented slow test runs with SIOSERVER_SLOW=1 only; elsewhere it is skipped, saying so."""
    if os.environ.get("SIOSERVER_SLOW") != "1":
        pytest.skip(f"slow ({what}): set SIOSERVER_SLOW=1")


def executable(name: str, *, also: Iterable[str] = (), env: str | None = None, why: str = "") -> str:
    """The path of ``name`` (``$env`` first, then PATH, then the paths in ``also``), or ``missing()``."""
    candidates = [os.environ.get(env, "")] if env else []
    candidates.append(shutil.which(name) or "")
    candidates.extend(also)
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    missing(f"{name} is not installed{': ' + why if why else ''}")


def node() -> str:
    return executable("node", why="the Node peers need Node 18+")


def npm() -> str:
    return executable("npm", why="the Node peers are installed with npm ci")


def redis_server() -> str:
    return executable("redis-server", also=["/usr/bin/redis-server"], why="the Redis adapter tests start their own")


def chromium() -> str:
    return executable("chromium", also=["/usr/bin/chromium"], env="CHROMIUM", why="the browser tests drive Chromium")


def nginx() -> str:
    return executable("nginx", also=["/usr/sbin/nginx"], why="the deployment test puts nginx in front")


def wstest() -> str:
    """Autobahn|Testsuite's wstest, installed under .tools/ by scripts/install-autobahn.sh."""
    path = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "wstest"
    if not (path.is_file() and os.access(path, os.X_OK)):
        missing(f"wstest (Autobahn|Testsuite) is not installed at {path}: ./scripts/install-autobahn.sh installs it")
    return str(path)
