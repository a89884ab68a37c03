"""``import sioclient`` is light: the client's layers load on first use, and never a web server."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sioclient

from tests._support import imports

WATCH = ("aiohttp", "aiohttp.web", "asyncio", "msgpack")


def loaded_after(statement: str) -> list[str]:
    return imports.loaded_after(statement, WATCH)


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
    checked = imports.type_checking_names(sioclient.__file__)
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
