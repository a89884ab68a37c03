"""The README's demo command, ``./scripts/demo.sh``, serves the chat page and the client bundle."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests._support.procs import ROOT, Process, start_or_fail


def test_demo_script_serves_the_chat(tmp_path: Path) -> None:
    demo = Process([str(ROOT / "scripts" / "demo.sh"), "--port", "0"], log_path=tmp_path / "demo.log", cwd=ROOT,
                   ready=re.compile(r"sioserver demo on (http://\S+)"), new_session=True)
    start_or_fail(demo, timeout=240)  # on a fresh machine it installs first
    try:
        assert demo.match is not None
        url = demo.match.group(1)
        with urllib.request.urlopen(url + "/", timeout=5) as page:
            html = page.read().decode()
        assert page.status == 200 and "socket.io.min.js" in html
        with urllib.request.urlopen(url + "/vendor/socket.io.min.js", timeout=5) as bundle:
            assert bundle.status == 200 and len(bundle.read()) > 10_000
        with urllib.request.urlopen(url + "/socket.io/?EIO=4&transport=polling", timeout=5) as handshake:
            assert handshake.read().startswith(b'0{"sid":')
    finally:
        code = demo.stop(timeout=10)  # SIGTERM to the script's process group
    assert code == 0, demo.context()
