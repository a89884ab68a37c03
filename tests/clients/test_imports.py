"""``import sioclient`` is light: the client's layers load on first use, and never a web server."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sioclient

WATCH = ("aiohttp", "aiohttp.web", "asyncio", "msgpack")


def loaded_after(statement: str) -> list[str]:
    probe = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {list(WATCH)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_sioclient_loads_no_io_library() -> None:
    assert loaded_after("import sioclient") == []
    assert loaded_after("import sioclient.exceptions") == []


@pytest.mark.parametrize(
    "statement",
    [
        "from sioclient import AsyncClient, SimpleClient",
        "import sioclient.websocket",
        "import sioclient.engine",
        "import sioclient; sioclient.AsyncClient(serializer='msgpack')",
    ],
)
def test_the_client_uses_aiohttps_client_never_its_server(statement: str) -> None:
    loaded = loaded_after(statement)
    assert "aiohttp" in loaded
    assert "aiohttp.web" not in loaded


def test_all_the_table_and_type_checkers_agree() -> None:
    tree = ast.parse(Path(sioclient.__file__).read_text())
    checked: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                checked.update(alias.asname or alias.name for alias in stmt.names)
    assert len(set(sioclient.__all__)) == len(sioclient.__all__)
    assert set(sioclient.__all__) == set(sioclient._EXPORTS) == checked


@pytest.mark.parametrize("name", sioclient.__all__)
def test_every_public_name_resolves(name: str) -> None:
    probe = f"import sioclient\nfrom sioclient import {name}\nassert getattr(sioclient, {name!r}) is {name}"
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_unknown_names() -> None:
    with pytest.raises(AttributeError, match="no attribute 'AsyncClien'"):
        sioclient.AsyncClien  # noqa: B018
    assert "AsyncClient" in dir(sioclient)
