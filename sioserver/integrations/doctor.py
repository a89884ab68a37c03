"""``python -m sioserver doctor URL [--origin O]``: check a deployed Socket.IO endpoint through its proxy.

Each check prints one line, ``PASS``, ``FAIL`` (with the fix) or ``SKIP``; the exit status is 1 when a
check failed. The checks, in order:

- **handshake**: a long-polling handshake answers an Engine.IO 4 OPEN packet (its ping interval,
  ping timeout and upgrades are shown).
- **websocket**: a WebSocket handshake gets 101 and an OPEN packet. A ``400 {"code":3}`` means the
  request reached the server without its ``Upgrade`` header: the proxy strips it.
- **upgrade**: a polling session upgrades to WebSocket (the probe reaches the worker that holds the
  session).
- **sticky**: a run of polling requests of one session all reach the worker that knows it
  (``400 {"code":1,"message":"Session ID unknown"}`` otherwise).
- **cors**: with ``--origin``, the handshake, the preflight and a WebSocket from that origin are let in,
  with credentials.
- **idle**: an idle connection on each transport lives until the server's first ping: a proxy whose
  idle timeout is shorter than the ping interval cuts it first (``--no-idle`` skips it; it takes
  the ping interval, 25 s by default).

The checks speak Engine.IO only (no Socket.IO namespace is joined), so no connect handler runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["Check", "diagnose", "main"]

_NGINX_UPGRADE = ("nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
                  "proxy_set_header Connection $connection_upgrade; (map $http_upgrade $connection_upgrade "
                  "{ default upgrade; '' close; }); HAProxy passes it as is")
_NOT_STICKY = "not sticky"
_STICKY_FIX = ("make the balancer sticky: nginx `ip_hash;` (or `hash $cookie_...`) in the upstream, HAProxy "
               "`cookie SRV insert indirect nocache`; or serve every node with sioserver.run / python -m sioserver and "
               "a Redis adapter (the nodes forward each other's sessions' requests); or have clients use "
               "transports: ['websocket'] only")


@dataclass
class Check:
    name: str
    status: str  # "PASS", "FAIL" or "SKIP"
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status} {self.name}: {self.detail}"
        return f"{text} -- fix: {self.fix}" if self.fix else text


class _Endpoint:
    def __init__(self, url: str, path: str) -> None:
        self.base = url.rstrip("/") + "/" + path.strip("/") + "/"

    def url(self, transport: str, sid: str | None = None) -> str:
        return f"{self.base}?EIO=4&transport={transport}" + (f"&sid={sid}" if sid else "")

    def ws_url(self, sid: str | None = None) -> str:
        url = self.url("websocket", sid)
        return "ws" + url[4:] if url.startswith("http") else url


def _error(body: str) -> tuple[int | None, str]:
    """The Engine.IO error answer ``{"code", "message"}``, if that is what ``body`` is."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, body[:120]
    if isinstance(data, dict) and "code" in data:
        return data.get("code"), str(data.get("message"))
    return None, body[:120]


def _open_packet(body: str) -> dict[str, Any] | None:
    if not body.startswith("0{"):
        return None
    try:
        data = json.loads(body[1:])
    except ValueError:
        return None
    return data if isinstance(data, dict) and "sid" in data else None


class Doctor:
    def __init__(self, http: aiohttp.ClientSession, endpoint: _Endpoint, origin: str | None, timeout: float) -> None:
        self.http = http
        self.endpoint = endpoint
        self.origin = origin
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.open: dict[str, Any] | None = None
        self.polling = True
        self.websocket_ok = False

    def _headers(self, origin: bool = False) -> dict[str, str]:
        return {"Origin": self.origin} if origin and self.origin else {}

    async def handshake(self, origin: bool = False) -> tuple[int, str, dict[str, Any] | None, Any]:
        async with self.http.get(self.endpoint.url("polling"), headers=self._headers(origin),
                                 timeout=self.timeout) as response:
            body = await response.text(errors="replace")
            return response.status, body, _open_packet(body), response.headers

    # ---------------------------------------------------------------------------------- checks

    async def check_handshake(self) -> Check:
        name = "handshake"
        try:
            status, body, opening, _ = await self.handshake()
        except aiohttp.ClientConnectorError as exc:
            return Check(name, "FAIL", f"cannot connect to {self.endpoint.base}: {exc.os_error or exc}",
                         "check the URL, that the proxy or server listens there, and the firewall")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check(name, "FAIL", f"no answer from {self.endpoint.base}: {exc.__class__.__name__} {exc}",
                         "check that the proxy forwards to a running server")
        if status == 200 and opening is not None:
            self.open = opening
            return Check(name, "PASS", self._describe(opening))
        code, message = _error(body)
        if status == 400 and code == 0:  # Transport unknown: a WebSocket-only server
            self.polling = False
            return Check(name, "PASS", "long-polling is off on the server (transports=['websocket']): "
                                       "the checks go on over WebSocket")
        if status == 404:
            return Check(name, "FAIL", f"404 at {self.endpoint.base}: nothing serves Socket.IO at this path",
                         "forward the path to the server (nginx `location /socket.io/ { proxy_pass ...; }`), "
                         "or pass --path if the server uses another one")
        if status in (502, 504):
            return Check(name, "FAIL", f"the proxy answers {status}: it cannot reach a server behind it",
                         "start the workers, and check the proxy's upstream addresses")
        if status == 503:
            return Check(name, "FAIL", f"503 {message}: the server refuses handshakes (shutting down, or "
                                       "max_connections reached)", "wait for the restart, or add capacity")
        if status == 200 and body[:4].isdigit() and ":0{" in body[:8]:
            return Check(name, "FAIL", "the server speaks Engine.IO 3 (Socket.IO 2): these clients need 4",
                         "upgrade the server to Socket.IO 3+ / sioserver")
        if code is not None:
            return Check(name, "FAIL", f"HTTP {status} {message} (code {code})",
                         "see the server's log line for this refusal")
        return Check(name, "FAIL", f"HTTP {status}, not an Engine.IO OPEN packet: {body[:80]!r}",
                     "the URL reaches something other than a Socket.IO server")

    def _describe(self, opening: dict[str, Any]) -> str:
        return (f"Engine.IO 4 OPEN: pingInterval {opening.get('pingInterval')} ms, pingTimeout "
                f"{opening.get('pingTimeout')} ms, upgrades {opening.get('upgrades')}, maxPayload "
                f"{opening.get('maxPayload')} B")

    async def _ws_refusal(self, status: int, sid: str | None = None) -> tuple[int, str]:
        """What the server said to a WebSocket handshake it refused: the same request as plain GET."""
        headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        try:
            async with self.http.get(self.endpoint.url("websocket", sid), headers=headers,
                                     timeout=self.timeout) as response:
                if response.status == 101:
                    return 101, ""
                return response.status, await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError):
            return status, ""

    async def check_websocket(self) -> Check:
        name = "websocket"
        try:
            async with self.http.ws_connect(self.endpoint.ws_url(), headers=self._headers(),
                                            timeout=aiohttp.ClientWSTimeout(ws_receive=self.timeout.total,
                                                                           ws_close=2)) as ws:
                message = await ws.receive(timeout=self.timeout.total)
                opening = _open_packet(message.data) if message.type == aiohttp.WSMsgType.TEXT else None
                if opening is None:
                    return Check(name, "FAIL", f"the WebSocket opened but brought {message.type.name} "
                                               f"{str(message.data)[:60]!r}, not an OPEN packet",
                                 "the proxy must pass WebSocket frames through unchanged")
                self.websocket_ok = True
                if self.open is None:
                    self.open = opening
                return Check(name, "PASS", "WebSocket handshake 101 and OPEN packet")
        except aiohttp.WSServerHandshakeError as exc:
            status, body = await self._ws_refusal(exc.status)
            code, reason = _error(body)
            if status == 400 and code == 3:
                return Check(name, "FAIL", "the WebSocket handshake reached the server without its Upgrade "
                                           "header (400 Bad request): the proxy strips Upgrade", _NGINX_UPGRADE)
            if status == 400 and code == 0:
                return Check(name, "SKIP", "WebSocket is off on the server (transports=['polling'])")
            if status == 403:
                return Check(name, "FAIL", f"403 {reason}: the server refuses this WebSocket "
                                           f"(origin {self.origin or 'none'})",
                             "add the origin to cors_allowed_origins" if self.origin else "see the server log")
            if status == 200:
                return Check(name, "FAIL", "the proxy answered the WebSocket handshake with 200: it does not "
                                           "pass WebSocket upgrades", _NGINX_UPGRADE)
            return Check(name, "FAIL", f"WebSocket handshake refused: HTTP {status} {reason or exc.message}",
                         _NGINX_UPGRADE if status in (400, 426, 502) else "see the server and proxy logs")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check(name, "FAIL", f"WebSocket failed: {exc.__class__.__name__} {exc}",
                         "check that the proxy passes WebSocket upgrades: " + _NGINX_UPGRADE)

    async def check_upgrade(self) -> Check:
        name = "upgrade"
        if not self.polling or not self.websocket_ok:
            return Check(name, "SKIP", "needs both long-polling and WebSocket")
        if self.open is not None and "websocket" not in (self.open.get("upgrades") or []):
            return Check(name, "SKIP", "the server offers no upgrade (allow_upgrades=False)")
        _, _, opening, _ = await self.handshake()
        if opening is None:
            return Check(name, "FAIL", "a second handshake failed", "see the handshake check")
        sid = str(opening["sid"])
        try:
            async with self.http.ws_connect(self.endpoint.ws_url(sid), headers=self._headers()) as ws:
                await ws.send_str("2probe")
                message = await ws.receive(timeout=self.timeout.total)
                if message.type == aiohttp.WSMsgType.TEXT and message.data == "3probe":
                    await ws.send_str("5")
                    return Check(name, "PASS", "a polling session upgraded to WebSocket (probe answered)")
                return Check(name, "FAIL", f"the upgrade probe got {message.type.name} {str(message.data)[:40]!r}",
                             "the WebSocket must reach the worker that holds the polling session: " + _STICKY_FIX)
        except aiohttp.WSServerHandshakeError as exc:
            status, body = await self._ws_refusal(exc.status, sid)
            code, reason = _error(body)
            if code == 1 or status == 101:  # refused, then accepted when asked again: another worker
                return Check(name, "FAIL", f"the upgrade got HTTP {exc.status} from a worker that does not know "
                                           "the session (Session ID unknown)", _STICKY_FIX)
            return Check(name, "FAIL", f"the upgrade was refused: HTTP {status} {reason}", _NGINX_UPGRADE)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Check(name, "FAIL", f"the upgrade failed: {exc.__class__.__name__} {exc}", _STICKY_FIX)

    async def check_sticky(self, requests: int = 12) -> Check:
        name = "sticky"
        if not self.polling:
            return Check(name, "SKIP", "no long-polling: WebSocket sessions need no stickiness")
        _, _, opening, _ = await self.handshake()
        if opening is None:
            return Check(name, "FAIL", "a handshake failed", "see the handshake check")
        sid = str(opening["sid"])
        lost = 0
        statuses = []
        for _ in range(requests):
            # a PONG: harmless to the session (it only re-arms the heartbeat), answered "ok" by its worker
            async with self.http.post(self.endpoint.url("polling", sid), data="3",
                                      headers={"Content-Type": "text/plain;charset=UTF-8"},
                                      timeout=self.timeout) as response:
                body = await response.text(errors="replace")
                statuses.append(response.status)
                if response.status == 400 and _error(body)[0] == 1:
                    lost += 1
                elif response.status != 200:
                    return Check(name, "FAIL", f"a polling POST got HTTP {response.status} {body[:80]!r}",
                                 "see the server log for this refusal")
        if lost:
            return Check(name, "FAIL", f"{lost} of {requests} polling requests of one session reached a worker "
                                       "that does not know it (400 Session ID unknown): the balancer is not sticky",
                         _STICKY_FIX)
        return Check(name, "PASS", f"{requests} polling requests of one session all reached its worker")

    async def check_cors(self) -> Check:
        name = "cors"
        origin = self.origin
        if not origin:
            return Check(name, "SKIP", "pass --origin https://your.app to check cross-origin access")
        fix = f"add {origin!r} to cors_allowed_origins (and let the proxy pass the CORS headers through)"
        problems = []
        if self.polling:
            status, body, opening, headers = await self.handshake(origin=True)
            allowed = headers.get("Access-Control-Allow-Origin")
            if status == 403 or opening is None:
                problems.append(f"the handshake from {origin} is refused (HTTP {status} {_error(body)[1]})")
            elif allowed not in (origin, "*"):
                problems.append(f"the handshake answer allows origin {allowed!r}, not {origin!r}")
            elif headers.get("Access-Control-Allow-Credentials") != "true":
                problems.append("no Access-Control-Allow-Credentials: true (withCredentials and cookies fail)")
            preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                         "Access-Control-Request-Headers": "content-type"}
            async with self.http.options(self.endpoint.url("polling"), headers=preflight,
                                         timeout=self.timeout) as response:
                if response.status >= 300 or response.headers.get("Access-Control-Allow-Origin") not in (origin, "*"):
                    problems.append(f"the preflight (OPTIONS) answers {response.status} without allowing {origin}")
        if self.websocket_ok or not self.polling:
            try:
                async with self.http.ws_connect(self.endpoint.ws_url(), headers={"Origin": origin}):
                    pass
            except aiohttp.WSServerHandshakeError as exc:
                problems.append(f"a WebSocket from {origin} is refused (HTTP {exc.status})")
        if problems:
            return Check(name, "FAIL", "; ".join(problems), fix)
        return Check(name, "PASS", f"{origin} may connect on every transport, with credentials")

    async def check_idle(self, max_wait: float) -> Check:
        name = "idle"
        opening = self.open
        if opening is None:
            return Check(name, "SKIP", "no handshake")
        interval = float(opening.get("pingInterval", 25000)) / 1000
        if interval > max_wait:
            return Check(name, "SKIP", f"the ping interval ({interval:g} s) is longer than --max-idle {max_wait:g} s")
        margin = min(10.0, float(opening.get("pingTimeout", 20000)) / 1000)
        tasks = []
        if self.websocket_ok:
            tasks.append(self._idle_websocket(interval + margin))
        if self.polling:
            tasks.append(self._idle_polling(interval + margin))
        results = await asyncio.gather(*tasks)
        if self.polling and results[-1] == _NOT_STICKY:
            results.pop()  # long-polling cannot be held idle through a balancer that is not sticky
            if not results:
                return Check(name, "SKIP", "long-polling requests do not reach one worker (see sticky)")
        failed = [r for r in results if r is not None]
        if failed:
            return Check(name, "FAIL", "; ".join(failed),
                         f"raise the proxy's idle timeout above pingInterval + pingTimeout "
                         f"({interval + float(opening.get('pingTimeout', 20000)) / 1000:g} s): nginx "
                         "`proxy_read_timeout`, HAProxy `timeout tunnel` / `timeout server`; or lower ping_interval")
        transports = " and ".join(t for t, on in (("WebSocket", self.websocket_ok), ("long-polling", self.polling))
                                  if on)
        return Check(name, "PASS", f"idle {transports} connections lived until the server's ping "
                                   f"(pingInterval {interval:g} s)")

    async def _idle_websocket(self, wait: float) -> str | None:
        started = time.monotonic()
        try:
            async with self.http.ws_connect(self.endpoint.ws_url(), headers=self._headers(),
                                            autoping=True) as ws:
                first = await ws.receive(timeout=self.timeout.total)
                if first.type != aiohttp.WSMsgType.TEXT or not str(first.data).startswith("0"):
                    return f"WebSocket: no OPEN packet ({first.type.name})"
                message = await ws.receive(timeout=wait)
                if message.type == aiohttp.WSMsgType.TEXT and message.data == "2":
                    await ws.send_str("3")
                    return None
                return (f"an idle WebSocket was closed after {time.monotonic() - started:.1f} s, before the "
                        f"server's first ping ({message.type.name} {message.data!r})")
        except TimeoutError:
            return f"no ping on an idle WebSocket within {wait:g} s"
        except aiohttp.ClientError as exc:
            return f"idle WebSocket: {exc.__class__.__name__} {exc}"

    async def _idle_polling(self, wait: float) -> str | None:
        _, _, opening, _ = await self.handshake()
        if opening is None:
            return "long-polling: the handshake failed"
        sid = str(opening["sid"])
        started = time.monotonic()
        try:
            async with self.http.get(self.endpoint.url("polling", sid),
                                     timeout=aiohttp.ClientTimeout(total=wait + 5)) as response:
                body = await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            elapsed = time.monotonic() - started
            return f"a parked long-polling GET failed after {elapsed:.1f} s: {exc.__class__.__name__}"
        elapsed = time.monotonic() - started
        if response.status == 400 and _error(body)[0] == 1:
            return _NOT_STICKY
        if response.status == 200 and "2" in body.split("\x1e"):
            async with self.http.post(self.endpoint.url("polling", sid), data="3", timeout=self.timeout):
                pass
            return None
        return (f"a parked long-polling GET was answered HTTP {response.status} after {elapsed:.1f} s, before the "
                f"server's ping ({body[:60]!r})")


async def diagnose(url: str, origin: str | None = None, path: str = "socket.io", timeout: float = 10.0,
                   idle: bool = True, max_idle: float = 60.0) -> list[Check]:
    """Run the checks against ``url`` and return them in order."""
    jar = aiohttp.CookieJar(unsafe=True)  # keep a balancer's sticky cookie, even for an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        doctor = Doctor(http, _Endpoint(url, path), origin, timeout)
        checks = [await doctor.check_handshake()]
        if checks[0].status == "FAIL":
            return checks
        checks.append(await doctor.check_websocket())
        checks.append(await doctor.check_upgrade())
        checks.append(await doctor.check_sticky())
        checks.append(await doctor.check_cors())
        checks.append(await doctor.check_idle(max_idle) if idle else Check("idle", "SKIP", "--no-idle"))
        return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sioserver doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the public URL, e.g. https://chat.example.com")
    parser.add_argument("--origin", default=None, help="a web page origin that must be allowed (CORS)")
    parser.add_argument("--path", default="socket.io", help="the Socket.IO path (default socket.io)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle check (it waits one ping interval)")
    parser.add_argument("--max-idle", type=float, default=60.0, help="longest ping interval the idle check waits")
    args = parser.parse_args(argv)
    checks = asyncio.run(diagnose(args.url, args.origin, args.path, args.timeout, not args.no_idle, args.max_idle))
    for check in checks:
        print(check.line(), flush=True)
    return 1 if any(check.status == "FAIL" for check in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
