"""``python -m sioserver module:sio [--host H] [--port N] [--workers N] [--static URL=PATH] [--asgi module:app]``:
serve a server object from a module.

``python -m sioserver doctor URL [--origin O]`` checks a deployed endpoint instead (see
:mod:`sioserver.integrations.doctor`).
"""

from __future__ import annotations

import argparse
import sys

from .integrations.standalone import load, run
from .logfmt import configure


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        from .integrations.doctor import main as doctor  # noqa: PLC0415 - only for this subcommand

        raise SystemExit(doctor(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m sioserver", description=__doc__)
    parser.add_argument("target", help="module:attribute of an AsyncServer (attribute defaults to 'sio')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--path", default=None, help="URL path (default socket.io)")
    parser.add_argument("--static", action="append", default=[], metavar="URL=PATH",
                        help="serve a file or directory at URL (repeatable), as static_files")
    parser.add_argument("--asgi", default=None, metavar="MODULE:APP", help="an ASGI app for every other path")
    parser.add_argument("--front", choices=("http1", "aiohttp"), default="http1",
                        help="sioserver's own HTTP/1.1 front (default) or aiohttp")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="N processes on one port (SO_REUSEPORT) under a supervisor; they form a cluster")
    parser.add_argument("--advertise", default=None, metavar="HOST[:PORT]",
                        help="with a Redis adapter: where the other nodes reach this one to forward its sessions' "
                             "requests (default: the bound address; env SIOSERVER_ADVERTISE)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: one object per line, with sid, namespace and reason fields")
    args = parser.parse_args(argv)
    configure(args.log_level, args.log_format)
    static = {}
    for item in args.static:
        url, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--static takes URL=PATH, not {item!r}")
        static[url] = path
    run(load(args.target), args.host, args.port, socketio_path=args.path, static_files=static or None,
        other_asgi_app=load(args.asgi) if args.asgi else None, front=args.front, uvloop=not args.no_uvloop,
        workers=args.workers, advertise=args.advertise)


if __name__ == "__main__":
    main()
