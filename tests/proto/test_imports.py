"""The protocol cores stand alone, and ``sioserver``'s public names load on first use.

Each import runs in a fresh interpreter: in this one, pytest and the other tests have loaded everything.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import sioserver
import sioserver.proto
from tests._support import imports

HEAVY = ("aiohttp", "asyncio", "msgpack", "redis")


def loaded_after(statement: str, watch: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``watch`` a fresh interpreter has in sys.modules after ``statement``."""
    return imports.loaded_after(statement, watch)


PROTO_MODULES = [
    "sioserver.proto",
    *sorted(info.name for info in pkgutil.walk_packages(sioserver.proto.__path__, "sioserver.proto.")),
]


def test_every_proto_module_is_found() -> None:
    # the walk sees the subpackages' modules, so a new module is covered without editing this file
    assert {"sioserver.proto.websocket.connection", "sioserver.proto.socketio.notepack"} <= set(PROTO_MODULES)


@pytest.mark.parametrize("module", [*PROTO_MODULES, "sioserver.exceptions", "sioserver"])
def test_cores_load_neither_asyncio_nor_aiohttp(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_msgpack_is_imported_by_the_first_codec_only() -> None:
    statement = "from sioserver.proto.socketio import make_parser\nmake_parser('msgpack')"
    assert loaded_after(statement) == ["msgpack"]


def test_public_names_load_their_layer_on_first_use() -> None:
    assert loaded_after("import sioserver\nsioserver.ProtocolError") == []
    assert "asyncio" in loaded_after("import sioserver\nsioserver.AsyncServer")
    assert "redis" not in loaded_after("import sioserver\nsioserver.AsyncServer")
    assert "redis" in loaded_after("from sioserver import RedisAdapter")


# --- the lazy table in sioserver/__init__.py ------------------------------------------------------------


def type_checking_names() -> set[str]:
    """The names bound under ``if TYPE_CHECKING:`` in sioserver/__init__.py (what type checkers see)."""
    return imports.type_checking_names(sioserver.__file__)


def test_all_the_table_and_type_checkers_agree() -> None:
    table = set(sioserver._EXPORTS) | set(sioserver._SUBMODULES)
    assert len(set(sioserver.__all__)) == len(sioserver.__all__)
    assert set(sioserver.__all__) == table
    assert type_checking_names() == table


@pytest.mark.parametrize("name", sioserver.__all__)
def test_every_public_name_resolves_from_a_fresh_interpreter(name: str) -> None:
    probe = (
        f"import sioserver\nfrom sioserver import {name}\n"
        f"assert getattr(sioserver, {name!r}) is {name}\n"
        f"assert {name!r} in dir(sioserver)"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_star_import_and_unknown_names() -> None:
    namespace: dict[str, object] = {}
    exec("from sioserver import *", namespace)
    assert set(sioserver.__all__) <= set(namespace)
    assert namespace["engineio"] is sys.modules["sioserver.engineio"]
    with pytest.raises(AttributeError, match="no attribute 'AsyncSever'"):
        sioserver.AsyncSever  # noqa: B018
    with pytest.raises(ImportError):
        exec("from sioserver import AsyncSever", {})


def test_public_names_are_the_defining_objects() -> None:
    from sioserver.exceptions import ConnectionRefusedError
    from sioserver.server.server import AsyncServer

    assert sioserver.AsyncServer is AsyncServer
    assert sioserver.ConnectionRefusedError is ConnectionRefusedError
