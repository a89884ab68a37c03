"""Static files for ``sioserver.run(static_files=...)``, in python-socketio's ``static_files`` shape.

The mapping goes from URL path to a file name, a directory name, or ``{"filename": ...,
"content_type": ...}``::

    {"/": "index.html", "/static": "./public", "/app.js": {"filename": "dist/app.js",
                                                           "content_type": "text/javascript"}}

A URL path matches an entry exactly, or an entry naming a directory that contains it (the longest
such entry wins). A path that ends in ``/`` under a directory gets the directory's ``index.html`` (or
the file named by the mapping's ``""`` entry). Nothing outside a mapped directory is served:
``..`` and symbolic links that lead out are refused. Files are read in a worker thread, answered
with ``ETag`` and ``Last-Modified``, and ``304 Not Modified`` when the client has them already;
``HEAD`` gets the headers only. A path no entry names falls through (to the ASGI app, or 404).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .request import Http1Request

__all__ = ["StaticFiles"]

_TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")
_MAX_FILE = 64 * 1024 * 1024  # larger files are not loaded into memory here


class _Entry:
    __slots__ = ("content_type", "path")

    def __init__(self, value: Any) -> None:
        if isinstance(value, str | os.PathLike):
            value = {"filename": os.fspath(value)}
        if not isinstance(value, dict) or "filename" not in value:
            raise TypeError("a static_files value is a file or directory name, or {'filename', 'content_type'}")
        self.path = Path(value["filename"]).resolve()
        self.content_type: str | None = value.get("content_type")


class StaticFiles:
    def __init__(self, mapping: dict[str, Any]) -> None:
        index = mapping.get("")
        self.index: _Entry | None = _Entry(index) if index is not None else None
        self.entries = {url.rstrip("/") or "/": _Entry(value) for url, value in mapping.items() if url != ""}
        self._cache: dict[Path, tuple[float, int, bytes]] = {}

    def resolve(self, url_path: str) -> tuple[Path, str | None] | None:
        """The file for ``url_path`` and its configured content type, or None."""
        path = unquote(url_path)
        if "\x00" in path:
            return None
        key = path.rstrip("/") or "/"
        entry = self.entries.get(key)
        rest = ""
        if entry is None:
            probe = key
            while entry is None and probe not in ("", "/"):
                probe, _, last = probe.rpartition("/")
                rest = f"{last}/{rest}" if rest else last
                entry = self.entries.get(probe or "/")
            if entry is None:
                return None
        base = entry.path
        target = (base / rest).resolve() if rest else base
        if rest and not target.is_relative_to(base):
            return None  # `..` or a link out of the directory
        content_type = entry.content_type
        if target.is_dir():
            if not path.endswith("/") and rest:
                return None
            if self.index is not None:
                content_type = self.index.content_type
                target = target / self.index.path.name
            else:
                target = target / "index.html"
        return target, content_type

    async def serve(self, req: Http1Request) -> bool:
        """Answer ``req`` from the files; False if no entry names its path (or the file is missing)."""
        answer = await self.answer(req.method, req.path, req.headers.get("if-none-match"))
        if answer is None:
            return False
        req.conn.respond(*answer)
        return True

    async def answer(self, method: str, url_path: str, if_none_match: str | None
                     ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The response (status, headers, body) for a request of ``url_path``, or None if no entry names
        it (or the file is missing): the same answers under every front end."""
        found = self.resolve(url_path)
        if found is None:
            return None
        target, content_type = found
        try:
            stat = await asyncio.to_thread(os.stat, target)
        except OSError:
            return None
        if not os.path.isfile(target):
            return None
        if method not in ("GET", "HEAD"):
            return 405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")], b"Method Not Allowed"
        if stat.st_size > _MAX_FILE:
            return 500, [("Content-Type", "text/plain; charset=utf-8")], b"File too large to serve"
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = [("ETag", etag), ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
                   ("Cache-Control", "no-cache")]
        if etag in (if_none_match or "").replace(" ", "").split(","):
            return 304, headers, b""
        if content_type is None:
            guessed, _ = mimetypes.guess_type(target.name)
            content_type = guessed or "application/octet-stream"
            if content_type.startswith(_TEXT_TYPES) and "charset" not in content_type:
                content_type += "; charset=utf-8"
        cached = self._cache.get(target)
        if cached is not None and cached[0] == stat.st_mtime and cached[1] == stat.st_size:
            body = cached[2]
        else:
            try:
                body = await asyncio.to_thread(target.read_bytes)
            except OSError:
                return None
            if len(body) <= 1024 * 1024:
                self._cache[target] = (stat.st_mtime, stat.st_size, body)
        return 200, [("Content-Type", content_type), *headers], body
