"""The README's demo command, ``./scripts/demo.sh``, serves the chat page and the client bundle."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_serves_the_chat() -> None:
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo.sh"), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 240  # on a fresh machine it installs first
        url = None
        lines = []
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"sioserver demo on (http://\S+)", line)
            if match:
                url = match.group(1)
        assert url, "".join(lines[-20:])
        with urllib.request.urlopen(url + "/", timeout=5) as page:
            html = page.read().decode()
        assert page.status == 200 and "socket.io.min.js" in html
        with urllib.request.urlopen(url + "/vendor/socket.io.min.js", timeout=5) as bundle:
            assert bundle.status == 200 and len(bundle.read()) > 10_000
        with urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=5) as handshake:
            assert handshake.read().startswith(b'0{"sid":')
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
