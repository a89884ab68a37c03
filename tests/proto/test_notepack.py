"""sioserver.proto.socketio.notepack against notepack.io itself: both versions Node peers run.

notepack.io 2.2.0 sits inside socket.io-msgpack-parser 3.0.2, notepack.io 3.0.1 inside
@socket.io/redis-adapter 8.3 (both in tests/interop/node_modules). Node encodes JavaScript values and
says what ``JSON.stringify`` makes of them; we decode its bytes and must get the same. The other way, Node
decodes our bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import pytest

from sioserver.proto.socketio import notepack
from sioserver.proto.socketio.notepack import (
    REDIS_ADAPTER,
    SOCKET_IO_MSGPACK_PARSER,
    Codec,
    NotepackError,
    js_date_iso,
)

INTEROP = Path(__file__).resolve().parents[1] / "interop"
NOTEPACKS = {
    "2.2.0": "socket.io-msgpack-parser/node_modules/notepack.io",
    "3.0.1": "notepack.io",
}
DIALECTS = {"2.2.0": SOCKET_IO_MSGPACK_PARSER, "3.0.1": REDIS_ADAPTER}

# JavaScript values, by name (evaluated by Node)
JS_VALUES = {
    "undefined_in_array": "[1, undefined, 2]",
    "undefined_in_object": "({a: undefined, b: 1, c: {d: undefined}})",
    "undefined_alone": "undefined",
    "epoch": "new Date(0)",
    "date_ms": "new Date(1700000000123)",
    "date_before_epoch": "new Date(-1)",
    "date_year_minus_1": "new Date(-62198755200000)",
    "date_year_10000": "new Date(253402300800000)",
    "date_max": "new Date(8.64e15)",
    "date_min": "new Date(-8.64e15)",
    "date_2106": "new Date(4294967296000)",
    "uint8array": "new Uint8Array([1, 2, 3])",
    "arraybuffer_1": "new Uint8Array([0]).buffer",
    "arraybuffer_8": "new Uint8Array(8).buffer",
    "arraybuffer_300": "new Uint8Array(300).fill(7).buffer",
    "buffer": "Buffer.from([0xff, 0x00])",
    "mixed": "({d: new Date(5), arr: [new Uint8Array(8), undefined, 'é'], u: undefined, n: -(2 ** 31)})",
    "packet": "({type: 2, data: ['ev', new Date(0), undefined, {k: undefined}], nsp: '/', id: undefined})",
}

NODE_SCRIPT = r"""
const { createRequire } = require("module");
const req = createRequire(process.cwd() + "/");
const lib = req("./node_modules/" + process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
// what JSON.stringify makes of a value, with bytes as {"$bytes": hex}
const canon = (v) => JSON.parse(JSON.stringify(v, function (k, x) {
  const raw = this[k];
  if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) return { $bytes: Buffer.from(raw).toString("hex") };
  return x;
}) ?? "null");
const out = { encoded: {}, decoded: [] };
for (const [name, source] of Object.entries(input.values)) {
  const value = eval(source);
  out.encoded[name] = { hex: lib.encode(value).toString("hex"), json: canon(value) };
}
for (const hex of input.decode) {
  try { out.decoded.push({ json: canon(lib.decode(Buffer.from(hex, "hex"))) }); }
  catch (e) { out.decoded.push({ error: String(e) }); }
}
console.log(JSON.stringify(out));
"""


def canon(value: Any) -> Any:
    """Our decoded value in the form NODE_SCRIPT writes: bytes as {"$bytes": hex}."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canon(v) for v in value]
    return value


# Python values we send (what our peers must read back, in JSON.stringify's terms)
PY_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    127,
    128,
    -33,
    2**31,
    -(2**31) - 1,
    2**53 - 1,
    1.5,
    -0.25,
    "",
    "é日本😀",
    "x" * 40,
    "y" * 300,
    "z" * 70_000,
    b"",
    b"\x00\xff",
    b"b" * 300,
    [1, [2, [3]]],
    {"a": {"b": [b"\x01", None]}},
    {str(i): i for i in range(20)},
    list(range(20)),
]


def run_node(version: str, decode: list[str]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (INTEROP / "node_modules" / NOTEPACKS[version]).is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("node and tests/interop/node_modules are needed (./scripts/test.sh installs them)")
        pytest.skip("node or tests/interop/node_modules missing (./scripts/test.sh installs them)")
    proc = subprocess.run(
        [node, "-e", NODE_SCRIPT, NOTEPACKS[version]],
        input=json.dumps({"values": JS_VALUES, "decode": decode}),
        cwd=INTEROP,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.fixture(scope="module", params=sorted(NOTEPACKS))
def node(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    version: str = request.param
    ours = Codec(DIALECTS[version])
    return version, run_node(version, [ours.pack(v).hex() for v in PY_VALUES])


def test_we_read_what_notepack_writes(node: tuple[str, dict[str, Any]]) -> None:
    version, result = node
    codec = Codec(DIALECTS[version])
    for name, got in result["encoded"].items():
        raw = bytes.fromhex(got["hex"])
        assert canon(codec.unpack(raw)) == got["json"], (version, name, got["hex"])


def test_notepack_reads_what_we_write(node: tuple[str, dict[str, Any]]) -> None:
    version, result = node
    for value, got in zip(PY_VALUES, result["decoded"], strict=True):
        assert got == {"json": canon(value)}, (version, value)


def test_the_two_versions_write_what_the_docstring_says(node: tuple[str, dict[str, Any]]) -> None:
    version, result = node
    hexes = {name: got["hex"] for name, got in result["encoded"].items()}
    if version == "2.2.0":
        assert hexes["undefined_alone"] == "d40000"
        assert hexes["epoch"] == "d7000000000000000000"  # fixext 8, type 0
        assert hexes["uint8array"] == "c70300010203"  # ext 8, type 0
    else:
        assert hexes["undefined_alone"] == "c0"
        assert hexes["undefined_in_object"] == "82a16201a16380"  # the keys are left out
        assert hexes["epoch"] == "d6ff00000000"  # timestamp 32
        assert hexes["uint8array"] == "c403010203"  # bin
        # socket.io-msgpack-parser's notepack.io 2.2 does not read timestamps: neither does its dialect
        with pytest.raises(NotepackError, match="extension type -1"):
            Codec(SOCKET_IO_MSGPACK_PARSER).unpack(bytes.fromhex(hexes["epoch"]))


def test_timestamps_of_every_width() -> None:
    codec = Codec(REDIS_ADAPTER)
    assert codec.unpack(msgpack.packb(msgpack.Timestamp(1, 0))) == "1970-01-01T00:00:01.000Z"  # 32 bits
    assert codec.unpack(msgpack.packb(msgpack.Timestamp(1, 500_000_000))) == "1970-01-01T00:00:01.500Z"  # 64
    # 96 bits; before the epoch the Date constructor truncates towards zero: -1 s + 0.9999 ms -> -999 ms
    assert codec.unpack(msgpack.packb(msgpack.Timestamp(-1, 999_900))) == "1969-12-31T23:59:59.001Z"
    assert codec.unpack(msgpack.packb([{"t": msgpack.Timestamp(0, 0)}])) == [{"t": "1970-01-01T00:00:00.000Z"}]
    with pytest.raises(NotepackError, match="Date out of range"):
        codec.unpack(msgpack.packb(msgpack.Timestamp(8_640_000_000_001, 0)))


def test_a_0xff_byte_alone_changes_nothing() -> None:
    # b"\xff" in the data makes the codec look for timestamps; bytes and numbers must come through as they are
    codec = Codec(SOCKET_IO_MSGPACK_PARSER)
    value = {"b": b"\xff\xff", "n": 255, "l": [b"\xff", {"k": -1}]}
    assert codec.unpack(msgpack.packb(value, use_bin_type=True)) == value


def test_undefined_deep_inside_needs_no_recursion() -> None:
    raw = b"\x91" * 1000 + b"\xd4\x00\x00"  # undefined inside 1000 nested arrays: no RecursionError
    value = Codec().unpack(raw)
    for _ in range(1000):
        (value,) = value
    assert value is None


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "invalid msgpack"),
        (b"\xc1", "invalid msgpack"),
        (b"\x01\x02", "invalid msgpack"),  # trailing bytes
        (b"\xd5\x00ab", "fixext of 2 bytes"),
        (b"\xd4\x05a", "extension type 5"),
        (b"\xc7\x01\x05a", "extension type 5"),
        (b"\xd5\xff\x00\x00", "invalid msgpack"),  # a timestamp of a length msgpack does not define
    ],
)
def test_malformed_input(raw: bytes, match: str) -> None:
    for dialect in (SOCKET_IO_MSGPACK_PARSER, REDIS_ADAPTER):
        with pytest.raises(NotepackError, match=match):
            Codec(dialect).unpack(raw)


def test_pack_refusals_and_surrogates() -> None:
    codec = Codec()
    with pytest.raises(ValueError, match="out of msgpack range"):
        codec.pack(2**64)
    with pytest.raises(TypeError):
        codec.pack(object())
    assert codec.unpack(codec.pack(["a\ud800b", {"\udfff": 1}])) == ["a\ufffdb", {"\ufffd": 1}]
    assert "a\ud800".encode("utf-8", notepack.SURROGATE_ERRORS) == b"a\xef\xbf\xbd"
    with pytest.raises(UnicodeDecodeError):
        b"\xff".decode("utf-8", notepack.SURROGATE_ERRORS)


def test_js_date_iso_edges() -> None:
    assert js_date_iso(0) == "1970-01-01T00:00:00.000Z"
    assert js_date_iso(-62_167_219_200_000) == "0000-01-01T00:00:00.000Z"
    with pytest.raises(NotepackError):
        js_date_iso(-8_640_000_000_000_001)


def test_dialects_say_what_they_match() -> None:
    assert "notepack.io 2.2.0" in repr(SOCKET_IO_MSGPACK_PARSER) and not SOCKET_IO_MSGPACK_PARSER.timestamps
    assert "notepack.io 3.0.1" in REDIS_ADAPTER.name and REDIS_ADAPTER.timestamps


def test_ext_format_scan_covers_every_msgpack_type():
    # One of each first byte: the scan must land on every extension and report its format.
    ext = msgpack.ExtType
    values = [None, True, False, 1, 200, 70_000, 2**40, -1, -100, -40_000, -(2**40), 1.5,
              "s", "x" * 40, "y" * 300, "z" * 70_000, b"b", b"c" * 300, b"d" * 70_000,
              list(range(20)), list(range(70_000)), {str(i): i for i in range(20)},
              ext(0, b"a"), ext(0, b"ab"), ext(0, b"abcd"), ext(0, b"12345678"), ext(0, b"x" * 16),
              ext(0, b"abc"), ext(0, b"x" * 300), ext(0, b"y" * 70_000)]
    raw = msgpack.packb(values, use_bin_type=True) + b"\xca\x00\x00\x00\x00"  # float 32 too
    assert notepack._ext_formats(raw) == [True] * 5 + [False] * 3
