"""The WebSocket connection state machine (RFC 6455 sections 5-7, RFC 7692), sans I/O.

Theory of operation
-------------------
:class:`Connection` is a state machine for one established connection. Bytes from the peer go in
through :meth:`Connection.receive_data`, which returns the events they complete, in order: a text
message (``str``), a binary message (``bytes``), :class:`Ping`, :class:`Pong` or :class:`Close`.
Every ``send_*`` method returns the bytes to write. Nothing here does I/O, reads a clock or raises on
bad input: a protocol violation ends the event list with a :class:`Close` event whose ``error`` is the
:class:`~sioserver.exceptions.WebSocketProtocolError` (its ``code`` says 1002, 1007 or 1009).

The caller handles events in order and writes answers as it goes, so that they keep their place
among its own messages: ``Ping.reply`` is the pong (section 5.5.2); on a :class:`Close` event it
writes :meth:`Connection.close_reply` - the Close frame that completes the closing handshake
(section 5.5.1) or fails the connection (section 7.1.7) - and closes the TCP connection (a server
closes it first, section 7.1.1). Input after a Close frame or a violation is ignored. The receiving
and the sending side close separately: messages sent while handling the events before a Close event
still go out, ahead of the reply; nothing goes out after it.

Parsing is index based over one buffer, so a burst of small frames costs a few integer operations
each; only a data frame that arrives in pieces is streamed, which validates UTF-8 (section 8.1) and
enforces the size limit as the payload arrives rather than once it is complete.
"""

from __future__ import annotations

import codecs
import zlib
from dataclasses import dataclass
from enum import IntEnum

from ...exceptions import WebSocketProtocolError
from .deflate import DEFLATE_TAIL as _DEFLATE_TAIL
from .deflate import DeflateParams
from .frames import (
    _SHORT_HEADERS,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    _close_payload,
    _mask,
    encode_frame,
    is_valid_close_code,
)

__all__ = ["Close", "Connection", "Event", "Ping", "Pong", "State"]

_SHORT_TEXT_HEADERS = _SHORT_HEADERS[OP_TEXT]


class State(IntEnum):
    OPEN = 1
    CLOSING = 2  # one side is closed: a Close frame went out, or one came in (or input failed)
    CLOSED = 3  # both sides are closed: close the transport


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ping:
    data: bytes
    reply: bytes  # the Pong frame to send (section 5.5.2)


@dataclass(frozen=True, slots=True)
class Pong:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """No more input: write :meth:`Connection.close_reply`, then close the transport.

    ``code``/``reason`` are the peer's (1005 for an empty Close frame), or the failure's when
    ``error`` is set (the reason is for logs, not for the wire).
    """

    code: int
    reason: str
    error: WebSocketProtocolError | None = None


Event = str | bytes | Ping | Pong | Close


# -- the connection state machine ------------------------------------------------------------------
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def _protocol_error(reason: str) -> WebSocketProtocolError:
    return WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, reason)


class Connection:
    """One WebSocket connection after the opening handshake (RFC 6455 sections 5-7, RFC 7692).

    ``client=False`` (a server) requires masked frames from the peer and never masks its own;
    ``client=True`` is the reverse. ``deflate`` holds the negotiated permessage-deflate parameters, or
    None. Messages whose payload exceeds ``max_message_size`` bytes (after inflation) or that take more
    than ``max_fragments`` frames fail with 1009; outgoing messages shorter than
    ``compression_threshold`` bytes are sent uncompressed.
    """

    __slots__ = (
        "_buf",
        "_close_sent",
        "_closed_input",
        "_compress_bits",
        "_compress_flush",
        "_compressor",
        "_deflate",
        "_f_fin",
        "_f_mask",
        "_f_phase",
        "_f_remaining",
        "_inflate_bits",
        "_inflate_reset",
        "_inflater",
        "_m_compressed",
        "_m_data",
        "_m_decoder",
        "_m_frames",
        "_m_opcode",
        "_m_size",
        "_m_text",
        "_m_wire",
        "_reply",
        "client",
        "compression_threshold",
        "max_fragments",
        "max_message_size",
        "state",
    )

    def __init__(
        self,
        *,
        client: bool = False,
        deflate: DeflateParams | None = None,
        max_message_size: int = 1 << 20,
        max_fragments: int = 4096,
        compression_threshold: int = 1024,
    ) -> None:
        self.client = bool(client)
        self.state = State.OPEN
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self.compression_threshold = compression_threshold
        self._buf: bytearray | None = None  # input not parsed yet
        self._closed_input = False  # a Close frame arrived or the connection failed
        self._close_sent = False  # send_close() or close_reply() made a Close frame
        self._reply = b""  # payload of the Close frame close_reply() makes
        # the data frame whose payload is being streamed (see _stream)
        self._f_remaining = 0
        self._f_mask: bytes | None = None
        self._f_phase = 0
        self._f_fin = False
        # the message being received; _m_opcode is 0 between messages
        self._m_opcode = 0
        self._m_compressed = False
        self._m_frames = 0
        self._m_wire = 0  # payload bytes as received
        self._m_size = 0  # payload bytes after inflation
        self._m_text: list[str] = []
        self._m_data: list[bytes] = []
        self._m_decoder: codecs.IncrementalDecoder | None = None
        # permessage-deflate, created lazily: a compressor costs tens of kilobytes
        self._deflate = deflate
        self._compressor: zlib._Compress | None = None
        self._inflater: zlib._Decompress | None = None
        self._compress_bits = 0  # 0: never compress
        self._compress_flush = zlib.Z_SYNC_FLUSH
        self._inflate_bits = 15
        self._inflate_reset = False
        if deflate is not None:
            if client:
                out_bits, out_reset = deflate.client_max_window_bits, deflate.client_no_context_takeover
                in_bits, in_reset = deflate.server_max_window_bits, deflate.server_no_context_takeover
            else:
                out_bits, out_reset = deflate.server_max_window_bits, deflate.server_no_context_takeover
                in_bits, in_reset = deflate.client_max_window_bits, deflate.client_no_context_takeover
            # zlib cannot deflate with an 8-bit window (it would silently use 9 and break the peer's
            # 256-byte window); such a peer just gets uncompressed messages, which RFC 7692 allows.
            self._compress_bits = out_bits if out_bits >= 9 else 0
            # A full flush makes every message independent of the ones before (no context takeover)
            # without reallocating the compressor.
            self._compress_flush = zlib.Z_FULL_FLUSH if out_reset else zlib.Z_SYNC_FLUSH
            # An inflater with a larger window than the sender's is always correct; zlib's deflate
            # turns an 8-bit window into 9, so never inflate with less than 9.
            self._inflate_bits = max(in_bits, 9)
            self._inflate_reset = in_reset

    @property
    def compressing(self) -> bool:
        """Whether messages of at least ``compression_threshold`` bytes go out compressed."""
        return self._compress_bits != 0

    # -- receiving ---------------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Feed bytes from the peer; return the events they complete, in order."""
        n = len(data)
        if (  # the common case first: exactly one whole, small, unfragmented text frame from a client
            n > 6
            and data[0] == 0x81
            and 0x80 < data[1] < 0xFE
            and n == (data[1] & 0x7F) + 6
            and n - 6 <= self.max_message_size
            and not self.client
            and self._buf is None
            and not self._f_remaining
            and not self._m_opcode
            and not self._closed_input
        ):
            try:  # (_mask, inline: one big-integer XOR for a payload under 126 bytes)
                k = n - 6
                return [(int.from_bytes(data[6:], "little")
                         ^ int.from_bytes((data[2:6] * ((k >> 2) + 1))[:k], "little")).to_bytes(k, "little").decode()]
            except UnicodeDecodeError:
                pass  # the general path below fails the connection with 1007
        events: list[Event] = []
        if self._closed_input:
            return events
        buf: bytes | bytearray
        if self._buf is None:
            buf = data
        else:
            buf = self._buf
            buf += data
        n = len(buf)
        pos = 0
        client = self.client
        try:
            while pos < n:
                if self._f_remaining:
                    pos = self._stream(buf, pos, n, events)
                    continue
                if n - pos < 2:
                    break
                b0 = buf[pos]
                b1 = buf[pos + 1]
                opcode = b0 & 0x0F
                length = b1 & 0x7F
                # Validate what the first two bytes say before waiting for the rest (fail fast).
                if b0 & 0x70 and (b0 & 0x70 != 0x40 or self._deflate is None or not 1 <= opcode <= 2):
                    raise _protocol_error("reserved bits set without a negotiated extension")
                if opcode >= 8:
                    if opcode > OP_PONG:
                        raise _protocol_error(f"reserved control opcode {opcode}")
                    if not b0 & 0x80:
                        raise _protocol_error("fragmented control frame")
                    if length > 125:
                        raise _protocol_error("control frame payload longer than 125 bytes")
                elif opcode == OP_CONTINUATION:
                    if not self._m_opcode:
                        raise _protocol_error("continuation frame outside a fragmented message")
                elif opcode <= OP_BINARY:
                    if self._m_opcode:
                        raise _protocol_error("new message inside a fragmented message")
                else:
                    raise _protocol_error(f"reserved data opcode {opcode}")
                if bool(b1 & 0x80) is client:
                    raise _protocol_error("masked frame from a server" if client else "unmasked frame")
                hlen = 2
                if length == 126:
                    if n - pos < 4:
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    hlen = 4
                elif length == 127:
                    if n - pos < 10:
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        raise _protocol_error("payload length with the most significant bit set")
                    hlen = 10
                if opcode < 8:
                    self._check_size(opcode, b0, length)
                if not client:
                    hlen += 4
                end = pos + hlen + length
                if end > n:
                    if opcode >= 8 or n - pos <= hlen:
                        break  # control frames are small: wait for the whole frame
                    # A data frame arrives in pieces: consume what is here now.
                    if opcode:
                        self._start_message(opcode, b0)
                    self._m_frames += 1
                    self._m_wire += length
                    self._f_remaining = length
                    self._f_mask = None if client else bytes(buf[pos + hlen - 4 : pos + hlen])
                    self._f_phase = 0
                    self._f_fin = bool(b0 & 0x80)
                    pos += hlen
                    continue
                start = pos + hlen
                payload = bytes(buf[start:end]) if client else _mask(buf[start:end], buf[start - 4 : start])
                pos = end
                if opcode >= 8:
                    self._control(opcode, payload, events)
                    if self._closed_input:
                        return events
                    continue
                if b0 & 0xC0 == 0x80 and opcode:
                    # An unfragmented, uncompressed message (the validation above guarantees that
                    # none is in progress): the common case.
                    if opcode == OP_TEXT:
                        try:
                            events.append(payload.decode())
                        except UnicodeDecodeError:
                            raise WebSocketProtocolError(
                                CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in a text message"
                            ) from None
                    else:
                        events.append(payload)
                    continue
                if opcode:
                    self._start_message(opcode, b0)
                self._m_frames += 1
                self._m_wire += length
                fin = bool(b0 & 0x80)
                self._data(payload, fin)
                if fin:
                    events.append(self._finish_message())
        except WebSocketProtocolError as exc:
            self._fail(exc, events)
            return events
        if pos == n:
            self._buf = None
        elif buf is self._buf:
            del buf[:pos]
        else:
            self._buf = bytearray(buf[pos:])
        return events

    def _check_size(self, opcode: int, b0: int, length: int) -> None:
        """Refuse a data frame from its header, before any of its payload is buffered."""
        if opcode:
            wire, frames, compressed = length, 1, b0 & 0x40
        else:
            wire, frames, compressed = self._m_wire + length, self._m_frames + 1, self._m_compressed
        limit = self.max_message_size
        if compressed:
            # Deflate can make incompressible data a little longer; the inflated size is what counts.
            limit += (limit >> 10) + 1024
        if wire > limit:
            raise WebSocketProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message longer than {limit} bytes")
        if frames > self.max_fragments:
            raise WebSocketProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message in more than {self.max_fragments} frames")

    def _stream(self, buf: bytes | bytearray, pos: int, n: int, events: list[Event]) -> int:
        """Consume the next piece of a data frame's payload; return the new position."""
        remaining = self._f_remaining
        take = min(n - pos, remaining)
        chunk = buf[pos : pos + take]
        mask = self._f_mask
        if mask is None:
            piece = bytes(chunk)
        else:
            phase = self._f_phase & 3
            if phase:
                mask = mask[phase:] + mask[:phase]
            piece = _mask(chunk, mask)
        self._f_phase += take
        self._f_remaining = remaining = remaining - take
        fin = not remaining and self._f_fin
        self._data(piece, fin)
        if fin:
            events.append(self._finish_message())
        return pos + take

    def _start_message(self, opcode: int, b0: int) -> None:
        self._m_opcode = opcode
        self._m_compressed = bool(b0 & 0x40)

    def _data(self, chunk: bytes, final: bool) -> None:
        """Add payload to the current message; ``final`` marks its last piece."""
        if self._m_compressed:
            chunk = self._inflate(chunk, final)
        else:
            self._m_size += len(chunk)
        if self._m_opcode == OP_TEXT:
            decoder = self._m_decoder
            if decoder is None:
                decoder = self._m_decoder = _Utf8Decoder()
            try:
                text = decoder.decode(chunk, final)
            except UnicodeDecodeError:
                raise WebSocketProtocolError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in a text message") from None
            if not final:
                # The decoder waits for more input after the first two bytes of a UTF-16 surrogate
                # (ED A0-BF) although no continuation can make them valid: fail fast here.
                pending = decoder.getstate()[0]
                if len(pending) == 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                    raise WebSocketProtocolError(CloseCode.INVALID_PAYLOAD, "UTF-16 surrogate in UTF-8")
            if text:
                self._m_text.append(text)
        elif chunk:
            self._m_data.append(chunk)

    def _inflate(self, chunk: bytes, final: bool) -> bytes:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self._inflate_bits)
        if final:
            chunk += _DEFLATE_TAIL
        budget = self.max_message_size - self._m_size
        try:
            # Never inflate more than the limit allows: a few kilobytes can inflate to gigabytes.
            data = inflater.decompress(chunk, budget + 1)
        except zlib.error:
            raise WebSocketProtocolError(CloseCode.INVALID_PAYLOAD, "invalid compressed data") from None
        if len(data) > budget:
            raise WebSocketProtocolError(
                CloseCode.MESSAGE_TOO_BIG, f"message inflates past {self.max_message_size} bytes"
            )
        self._m_size += len(data)
        return data

    def _finish_message(self) -> str | bytes:
        message: str | bytes
        if self._m_opcode == OP_TEXT:
            message = "".join(self._m_text)
            self._m_text = []
            self._m_decoder = None
        else:
            message = b"".join(self._m_data)
            self._m_data = []
        if self._m_compressed:
            inflater = self._inflater
            # A sender that ended its deflate stream (BFINAL, RFC 7692 section 7.2.3.3) starts a new
            # one; a sender without context takeover does not need our window any more.
            if inflater is not None and (self._inflate_reset or inflater.eof):
                self._inflater = None
        self._m_opcode = 0
        self._m_compressed = False
        self._m_frames = self._m_wire = self._m_size = 0
        return message

    def _control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == OP_PING:
            events.append(Ping(payload, encode_frame(OP_PONG, payload, mask=self.client)))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            self._receive_close(payload, events)

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        """Section 5.5.1: answer a Close frame with one echoing its code, unless we sent one already."""
        code: int
        if not payload:
            code, reason = CloseCode.NO_STATUS_RCVD, ""
        elif len(payload) == 1:
            raise _protocol_error("close frame with a 1-byte payload")
        else:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                raise _protocol_error(f"invalid close code {code}")
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise WebSocketProtocolError(CloseCode.INVALID_PAYLOAD, "invalid UTF-8 in a close reason") from None
        self._end(payload[:2])  # echo the code (section 5.5.1); the reason stays ours
        events.append(Close(code, reason))

    def _fail(self, exc: WebSocketProtocolError, events: list[Event]) -> None:
        """Section 7.1.7: the reply carries the error's code; the details stay in ``Close.error``."""
        self._end(exc.code.to_bytes(2, "big"))
        events.append(Close(exc.code, exc.reason, exc))

    def _end(self, reply: bytes) -> None:
        self._closed_input = True
        self._reply = reply
        self.state = State.CLOSED if self._close_sent else State.CLOSING
        self._buf = None
        self._m_text = []
        self._m_data = []
        self._m_decoder = None
        self._inflater = self._compressor = None

    # -- sending -----------------------------------------------------------------------------------
    def close_reply(self) -> bytes:
        """After a :class:`Close` event: the Close frame to send, or b"" if one went out already."""
        if self._close_sent or not self._closed_input:
            return b""
        self._close_sent = True
        self.state = State.CLOSED
        return encode_frame(OP_CLOSE, self._reply, mask=self.client)

    def send_text(self, text: str) -> bytes:
        """A text message frame (empty once we sent a Close frame: no data may follow it)."""
        if self._close_sent:
            return b""
        data = text.encode()
        if len(data) < 126 and not self._compress_bits and not self.client:  # the common case, one call less
            return _SHORT_TEXT_HEADERS[len(data)] + data
        return self._message(OP_TEXT, data)

    def send_binary(self, data: bytes) -> bytes:
        """A binary message frame (empty once we sent a Close frame)."""
        if self._close_sent:
            return b""
        return self._message(OP_BINARY, data)

    def _message(self, opcode: int, data: bytes) -> bytes:
        if self._compress_bits and len(data) >= self.compression_threshold:
            compressor = self._compressor
            if compressor is None:
                assert self._deflate is not None
                compressor = self._compressor = zlib.compressobj(
                    self._deflate.compress_level, zlib.DEFLATED, -self._compress_bits, self._deflate.mem_level
                )
            # A sync/full flush ends with an empty stored block, 00 00 ff ff, which is left out
            # (RFC 7692 section 7.2.1).
            payload = (compressor.compress(data) + compressor.flush(self._compress_flush))[:-4]
            return encode_frame(opcode, payload, rsv1=True, mask=self.client)
        if self.client:
            return encode_frame(opcode, data, mask=True)
        if len(data) < 126:
            return _SHORT_HEADERS[opcode][len(data)] + data
        return encode_frame(opcode, data)

    def send_ping(self, data: bytes = b"") -> bytes:
        if len(data) > 125:
            raise ValueError("ping payload longer than 125 bytes")
        if self._close_sent:
            return b""
        return encode_frame(OP_PING, data, mask=self.client)

    def send_pong(self, data: bytes = b"") -> bytes:
        if len(data) > 125:
            raise ValueError("pong payload longer than 125 bytes")
        if self.state is State.CLOSED:
            return b""
        return encode_frame(OP_PONG, data, mask=self.client)

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "") -> bytes:
        """Start the closing handshake (section 7.1.2); empty if it has started already.

        ``code=None`` sends a Close frame without a body. Raises ValueError for a code a peer would
        refuse or a reason longer than 123 bytes.
        """
        payload = _close_payload(code, reason)
        if self._close_sent:
            return b""
        self._close_sent = True
        self.state = State.CLOSED if self._closed_input else State.CLOSING
        return encode_frame(OP_CLOSE, payload, mask=self.client)
