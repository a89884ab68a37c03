"""The layers of sioserver import downward only.

    proto/, exceptions  (the standard library and each other)
      <- engine/, engineio.py  <- server/  <- adapters/
    integrations/ is the only place that imports a web framework, and nothing outside it imports it;
    nothing under sioserver/ imports the clients (sioclient).

Every ``import`` and ``from ... import`` in every module under ``sioserver/`` counts, wherever it stands:
at module level, inside a function (a lazy import), under ``if TYPE_CHECKING:``. Relative imports are
resolved against the module's package.

The package's entry points, ``sioserver/__init__.py`` and ``sioserver/__main__.py``, may import
``sioserver.integrations.standalone`` (``sioserver.run`` and ``python -m sioserver`` are the public way in
to it) and ``sioserver.integrations.asgi`` (``sioserver.ASGIApp``, python-socketio's name), ``__main__`` also ``sioserver.integrations.doctor`` (``python -m sioserver doctor``, an HTTP client
of a deployment), and nothing else of ``integrations/``.

``LAZY`` names the third-party imports a core module may make inside a function only, paid for by those
who use them: the msgpack codec imports ``msgpack`` when the first codec is made, so that importing
``proto/`` loads no package outside the standard library.

``ALLOWANCES`` lists what today's code still does against these rules, each by name, while the layers are
being restructured (issue #10); an allowance that no longer matches anything fails the test too, so the
list only shrinks.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sioserver"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

#: (importing module, imported module) -> why; allowed inside a function only
LAZY: dict[tuple[str, str], str] = {
    ("sioserver.proto.socketio.notepack", "msgpack"): "the msgpack serializer, for those who choose it",
}

#: (importing module, imported module) -> why. The three that remain are python-socketio's ``sio.attach(app)`` /
#: python-engineio's ``eio.attach(app)``: public API that ported apps call, so the server loads the aiohttp
#: integration inside that method, and only when it is called (all the wiring itself is in integrations/).
ALLOWANCES: dict[tuple[str, str], str] = {
    ("sioserver.server.server", "sioserver.integrations.aiohttp"): (
        "AsyncServer.attach(app), python-socketio's API: loads integrations.aiohttp.attach_server when called"
    ),
    ("sioserver.engineio", "sioserver.integrations.aiohttp"): (
        "engineio.AsyncServer.attach(app), python-engineio's API: loads integrations.aiohttp when called"
    ),
    ("sioserver.engineio", "sioserver.integrations.asgi"): (
        "engineio.ASGIApp, python-engineio's name: the module's __getattr__ loads integrations.asgi on first use"
    ),
}

ENTRY_POINTS = frozenset({"sioserver", "sioserver.__main__"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted and absolute
    line: int
    lazy: bool = False  # inside a function

    def where(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    """Every import of one module, relative ones made absolute; ``from pkg import name`` yields
    ``pkg.name`` when that is a module of the package, ``pkg`` otherwise."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node, lazy in _nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(Import(name, alias.name, node.lineno, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append(Import(name, sub if is_module(sub) else target, node.lineno, lazy))
    return found


def _nodes(node: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below ``node``, with whether it stands inside a function."""
    inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    for child in ast.iter_child_nodes(node):
        yield child, inner
        yield from _nodes(child, inner)


def is_module(dotted: str) -> bool:
    if not dotted.startswith("sioserver."):
        return False
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(module: str) -> str:
    """proto, core (exceptions), engine, server, adapters, integrations, entry, or other."""
    parts = module.split(".")
    if module in ENTRY_POINTS:
        return "entry"
    if len(parts) >= 2 and parts[1] in ("proto", "engine", "server", "adapters", "integrations"):
        return parts[1]
    if module == "sioserver.exceptions":
        return "core"
    if module == "sioserver.engineio":
        return "engine"  # python-engineio's shape of the engine layer
    return "other"


def inside(target: str, *layers: str) -> bool:
    return any(target == f"sioserver.{name}" or target.startswith(f"sioserver.{name}.") for name in layers)


def violation(imp: Import) -> str | None:
    """Why ``imp`` breaks a rule, or None."""
    source, target = layer(imp.module), imp.target
    top = target.split(".")[0]
    if top in ("sioclient", "clients"):
        return "nothing under sioserver/ imports the clients"
    if source in ("proto", "core"):
        if top in STDLIB or inside(target, "proto") or target == "sioserver.exceptions":
            return None
        if imp.lazy and (imp.module, top) in LAZY:
            return None
        return "proto/ and exceptions import only the standard library, each other and sioserver.exceptions"
    if inside(target, "integrations") and source != "integrations":
        if source == "entry" and target in ("sioserver.integrations", "sioserver.integrations.standalone",
                                                  "sioserver.integrations.asgi"):
            return None
        if imp.module == "sioserver.__main__" and target == "sioserver.integrations.doctor":
            return None
        return "only integrations/ imports integrations/ (the user or run() imports them)"
    if source == "engine" and inside(target, "server", "adapters"):
        return "engine/ does not import server/ or adapters/"
    if source == "server" and inside(target, "adapters"):
        return "server/ does not import adapters/"
    if source != "integrations" and top in ("aiohttp", "starlette", "fastapi", "django", "flask", "tornado"):
        return "only integrations/ imports a web framework"
    return None


def all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def test_the_walk_sees_the_package() -> None:
    """The walk reads every layer and resolves relative imports (a broken walk would pass everything)."""
    imports = all_imports()
    modules = {imp.module for imp in imports}
    assert {"sioserver", "sioserver.exceptions"} <= modules
    for name in ("proto", "engine", "server", "adapters", "integrations"):
        assert any(layer(m) == name for m in modules), name
    targets = {(imp.module, imp.target) for imp in imports}
    # relative imports come out absolute: every layer above proto uses it
    assert any(src.startswith("sioserver.engine.") and dst.startswith("sioserver.proto.") for src, dst in targets)
    assert any(src.startswith("sioserver.server.") and dst.startswith("sioserver.engine.") for src, dst in targets)


@pytest.mark.parametrize(
    ("module", "target", "broken"),
    [
        ("sioserver.proto.engineio", "json", False),
        ("sioserver.proto.engineio", "sioserver.exceptions", False),
        ("sioserver.proto.socketio", "sioserver.proto.engineio", False),
        ("sioserver.proto.websocket", "asyncio.streams", False),
        ("sioserver.proto.websocket", "aiohttp", True),
        ("sioserver.proto.socketio.notepack", "msgpack", True),  # at module level: the lazy one is allowed
        ("sioserver.proto.websocket", "sioserver.engine.websocket", True),
        ("sioserver.exceptions", "redis", True),
        ("sioserver.engine.session", "sioserver.server.socket", True),
        ("sioserver.engine.http", "sioserver.adapters.redis", True),
        ("sioserver.engine.http", "sioserver.integrations.aiohttp", True),
        ("sioserver.engineio", "sioserver.server.server", True),
        ("sioserver.server.socket", "sioserver.engine.session", False),
        ("sioserver.server.server", "sioserver.adapters.redis", True),
        ("sioserver.server.server", "aiohttp.web", True),
        ("sioserver.adapters.redis", "sioserver.server.adapter", False),
        ("sioserver.adapters.redis", "sioserver.integrations", True),
        ("sioserver.adapters.redis", "sioclient.client", True),
        ("sioserver.integrations.aiohttp", "aiohttp.web", False),
        ("sioserver", "sioserver.integrations.standalone", False),
        ("sioserver", "sioserver.integrations.asgi", False),
        ("sioserver", "sioserver.integrations.aiohttp", True),
    ],
)
def test_the_rules(module: str, target: str, broken: bool) -> None:
    assert (violation(Import(module, target, 1)) is not None) is broken


def test_a_lazy_import_is_seen_and_allowed_only_where_named() -> None:
    assert violation(Import("sioserver.proto.socketio.notepack", "msgpack", 1, lazy=True)) is None
    assert violation(Import("sioserver.proto.socketio.packet", "msgpack", 1, lazy=True)) is not None
    assert violation(Import("sioserver.server.server", "sioserver.adapters.redis", 1, lazy=True)) is not None
    lazy = {(imp.module, imp.target) for imp in all_imports() if imp.lazy}
    assert ("sioserver.proto.socketio.notepack", "msgpack") in lazy  # the walk finds imports inside functions


def test_layers_import_downward_only() -> None:
    broken = {(imp.module, imp.target): imp for imp in all_imports() if violation(imp) is not None}
    unexpected = [f"{imp.where()}: {violation(imp)}" for key, imp in broken.items() if key not in ALLOWANCES]
    assert not unexpected, "imports against the layering:\n  " + "\n  ".join(unexpected)
    stale = [f"{src} -> {dst} ({why})" for (src, dst), why in ALLOWANCES.items() if (src, dst) not in broken]
    assert not stale, "allowances no longer needed, remove them from ALLOWANCES:\n  " + "\n  ".join(stale)
