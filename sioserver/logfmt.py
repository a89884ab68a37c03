"""Log output for ``python -m sioserver --log-format json``: one JSON object per line.

sioserver logs under one logger per layer: ``sioserver.engine`` (Engine.IO sessions, transports,
WebSocket), ``sioserver.server`` (Socket.IO namespaces, sockets, handlers), ``sioserver.adapters``
(Redis and the cluster), ``sioserver.integrations`` (the HTTP front ends), ``sioserver.admin`` (the
Admin UI). Records about one client carry ``sid`` (the Engine.IO session, or the socket in a
namespace), ``namespace`` and ``reason`` in ``extra``; :class:`JsonFormatter` puts them, and any
other ``extra`` field, beside the message::

    {"time": "2026-12-02T16:20:00.123Z", "level": "INFO", "logger": "sioserver.engine",
     "message": "session X closed: ping timeout", "sid": "X", "reason": "ping timeout"}
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["JsonFormatter", "configure"]

#: attributes every LogRecord has: whatever else a record carries came in ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, the ``extra`` fields,
    and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=repr, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Root logging for ``python -m sioserver``: ``fmt`` is ``"text"`` or ``"json"`` (to stderr)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise ValueError(f"log format {fmt!r}: 'text' or 'json'")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
