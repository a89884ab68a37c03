"""The harness itself (tests/_support): what a suite relies on when a tool is missing, a server does not
start or a condition never comes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests._support import tools
from tests._support.procs import Process, StartError, flags
from tests._support.wait import wait_until


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: no-such-tool-0 is not installed"):
        tools.executable("no-such-tool-0")


def test_a_missing_tool_is_skipped_with_its_reason_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-tool-0 is not installed.*scripts/test.sh"):
        tools.executable("no-such-tool-0")


def test_a_slow_test_runs_only_with_sioserver_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIOSERVER_SLOW", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"slow \(a minute\): set SIOSERVER_SLOW=1"):
        tools.slow("a minute")
    monkeypatch.setenv("SIOSERVER_SLOW", "1")
    tools.slow("a minute")  # runs


def test_a_process_is_ready_at_its_ready_line_and_its_output_is_kept(tmp_path: Path) -> None:
    code = "import time; print('starting'); print('READY 4321', flush=True); time.sleep(30)"
    proc = Process([sys.executable, "-c", code], log_path=tmp_path / "p.log", name="sleeper")
    proc.start(timeout=10)
    try:
        assert proc.port == 4321 and proc.alive
        assert proc.output().splitlines() == ["starting", "READY 4321"]
    finally:
        assert proc.stop(timeout=5) is not None
    assert not proc.alive
    assert (tmp_path / "p.log").read_text().splitlines() == ["starting", "READY 4321"]


def test_a_process_that_exits_before_its_ready_line_is_reported_with_its_output(tmp_path: Path) -> None:
    proc = Process([sys.executable, "-c", "print('bad option'); raise SystemExit(3)"], log_path=tmp_path / "p.log",
                   name="quitter")
    with pytest.raises(StartError, match=r"quitter did not start \(exit 3\)[\s\S]*bad option"):
        proc.start(timeout=10)


def test_flags() -> None:
    assert flags(ping_interval=0.3, transports="websocket", verbose=True, quiet=False, ping_timeout=None) == [
        "--ping-interval", "0.3", "--transports", "websocket", "--verbose"]


async def test_wait_until_returns_the_value_or_says_what_it_waited_for() -> None:
    seen = iter([0, 0, 7])
    assert await wait_until(lambda: next(seen), timeout=1, what="a number") == 7
    with pytest.raises(AssertionError, match=r"after 0\.05 s: never: 0"):
        await wait_until(lambda: 0, timeout=0.05, what=lambda: "never: 0")
