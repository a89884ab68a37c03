"""Drive Autobahn|Testsuite's fuzzingserver with sioclient's WebSocket layer (an echo client).

    python tests/clients/autobahn_driver.py ws://127.0.0.1:9001 [--agent sioclient]

For every case: connect to ``/runCase?case=N&agent=A`` and echo each message until the server closes;
then ``/updateReports?agent=A`` so the fuzzingserver writes its reports. The client offers
permessage-deflate with every parameter the 13.* cases look for (``client_no_context_takeover``,
``client_max_window_bits``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from sioclient.exceptions import WebSocketClosed
from sioclient.websocket import DeflateOffer, connect

OFFER = DeflateOffer(client_no_context_takeover=True, client_max_window_bits=True)
MAX_MESSAGE = 64 * 2**20  # 9.* sends up to 16 MiB


async def echo_case(session: aiohttp.ClientSession, base: str, case: int, agent: str) -> None:
    try:
        ws = await connect(
            f"{base}/runCase?case={case}&agent={agent}",
            session=session,
            compression=OFFER,
            max_message_size=MAX_MESSAGE,
            close_timeout=2.0,
        )
    except Exception as exc:  # some cases refuse nothing; a failure here is the report's business
        print(f"case {case}: connect failed: {exc!r}", file=sys.stderr)
        return
    try:
        while True:
            message = await ws.recv()
            await ws.send(message)
    except WebSocketClosed:
        pass
    if ws.protocol_error is not None:
        print(f"case {case}: failed the connection: {ws.protocol_error}", file=sys.stderr)
    await ws.close()


async def text_of(session: aiohttp.ClientSession, url: str) -> str:
    ws = await connect(url, session=session, compression=False)
    try:
        message = await ws.recv()
    finally:
        await ws.close()
    return message if isinstance(message, str) else message.decode()


async def run(base: str, agent: str = "sioclient", *, verbose: bool = False) -> int:
    async with aiohttp.ClientSession() as session:
        count = int(await text_of(session, f"{base}/getCaseCount"))
        started = time.monotonic()
        for case in range(1, count + 1):
            t0 = time.monotonic()
            await echo_case(session, base, case, agent)
            if verbose:
                print(f"case {case}/{count}: {time.monotonic() - t0:.2f} s", file=sys.stderr)
        ws = await connect(f"{base}/updateReports?agent={agent}", session=session, compression=False)
        await ws.close()
        print(f"autobahn driver: {count} cases in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", help="the fuzzingserver, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--agent", default="sioclient")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.url.rstrip("/"), args.agent, verbose=args.verbose))


if __name__ == "__main__":
    main()
