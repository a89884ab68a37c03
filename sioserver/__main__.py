"""``python -m sioserver module:sio [--host H] [--port N]``: serve a server object from a module."""

from __future__ import annotations

import argparse
import logging

from .integrations.standalone import load, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sioserver", description=__doc__)
    parser.add_argument("target", help="module:attribute of an AsyncServer (attribute defaults to 'sio')")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default=None, help="URL path (default socket.io)")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(load(args.target), args.host, args.port, socketio_path=args.path, uvloop=not args.no_uvloop)


if __name__ == "__main__":
    main()
