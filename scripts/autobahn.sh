#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzingclient against sioserver's own WebSocket layer
# (tests/conformance/ws_echo.py, permessage-deflate offered) and exit with its status.
#
#   ./scripts/autobahn.sh                 all 517 cases (~8 min; 12.*/13.* are most of it)
#   AUTOBAHN_FAST=1 ./scripts/autobahn.sh without 9.*, 12.*, 13.* (~20 s)
#
# Every AUTOBAHN_* knob of ../shared/tools/autobahn/autobahn.sh passes through (AUTOBAHN_CASES,
# AUTOBAHN_EXCLUDE, AUTOBAHN_OUTDIR, ...). WS_ECHO_ARGS adds arguments to ws_echo.py.
# Last line of output: "autobahn: N ok, M non-strict, K failed, U unimplemented of T".
# Exit status: 0 no FAILED case, 1 some FAILED, 2 could not run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED="$ROOT/../shared/tools/autobahn"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

if [ ! -x "$SHARED/autobahn.sh" ]; then
  echo "autobahn: $SHARED not found" >&2; exit 2
fi
if [ ! -x "$ROOT/.tools/bin/wstest" ]; then
  echo "autobahn: installing wstest under .tools/ (about 25 s)" >&2
  mkdir -p "$ROOT/.tools/bin"
  if ! PREFIX="$ROOT/.tools/autobahn-py27" BIN="$ROOT/.tools/bin" bash "$SHARED/install-autobahn.sh" \
      >"$ROOT/.tools/install-autobahn.log" 2>&1; then
    echo "autobahn: wstest install failed, see .tools/install-autobahn.log" >&2; exit 2
  fi
fi

export AUTOBAHN_AGENT="${AUTOBAHN_AGENT:-sioserver}"
export AUTOBAHN_OUTDIR="${AUTOBAHN_OUTDIR:-$ROOT/autobahn-reports/sioserver}"
mkdir -p "$(dirname "$AUTOBAHN_OUTDIR")"
LOG="$AUTOBAHN_OUTDIR.server.log"  # beside the reports (autobahn.sh empties the report dir)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$PY" "${WS_ECHO:-$ROOT/tests/conformance/ws_echo.py}" --port "$PORT" --compression ${WS_ECHO_ARGS:-} >"$LOG" 2>&1 &
SERVER=$!
stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
trap stop EXIT

for _ in $(seq 100); do
  grep -q "ws_echo on" "$LOG" 2>/dev/null && break
  if ! kill -0 "$SERVER" 2>/dev/null; then echo "autobahn: ws_echo.py died:" >&2; cat "$LOG" >&2; exit 2; fi
  sleep 0.1
done
grep -q "ws_echo on" "$LOG" || { echo "autobahn: ws_echo.py did not start" >&2; cat "$LOG" >&2; exit 2; }

WSTEST="$ROOT/.tools/bin/wstest" "$SHARED/autobahn.sh" "$PORT" /
STATUS=$?
if grep -q "Traceback" "$LOG"; then
  echo "autobahn: ws_echo.py logged tracebacks, see $LOG" >&2
fi
exit $STATUS
