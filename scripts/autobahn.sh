#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzingclient (wstest -m fuzzingclient) against sioserver's own WebSocket layer
# (tests/conformance/ws_echo.py, permessage-deflate offered) and exit with its status.
#
#   ./scripts/autobahn.sh                 all 517 cases (~8 min; 12.*/13.* are most of it)
#   AUTOBAHN_FAST=1 ./scripts/autobahn.sh without 9.*, 12.*, 13.* (~20 s)
#
# Knobs: AUTOBAHN_CASES="1.*,2.*" and AUTOBAHN_EXCLUDE="9.*" (comma lists of case patterns), AUTOBAHN_AGENT
# (default sioserver), AUTOBAHN_OUTDIR (default autobahn-reports/sioserver), AUTOBAHN_TIMEOUT (s, default
# 3600), WS_ECHO_ARGS (more arguments to ws_echo.py). wstest is installed by scripts/install-autobahn.sh
# when it is not there yet.
# Last line of output: "autobahn: N ok, M non-strict, K failed, U unimplemented of T".
# Exit status: 0 no FAILED case, 1 some FAILED, 2 could not run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WSTEST="$ROOT/.tools/bin/wstest"
AGENT="${AUTOBAHN_AGENT:-sioserver}"
OUTDIR="${AUTOBAHN_OUTDIR:-$ROOT/autobahn-reports/sioserver}"
CASES="${AUTOBAHN_CASES:-*}"
EXCL="${AUTOBAHN_EXCLUDE:-}"
TIMEOUT="${AUTOBAHN_TIMEOUT:-3600}"
if [[ "${AUTOBAHN_FAST:-0}" == 1 ]]; then EXCL="${EXCL:+$EXCL,}9.*,12.*,13.*"; fi

rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"; OUTDIR="$(cd "$OUTDIR" && pwd)"
if ! "$ROOT/scripts/install-autobahn.sh" >"$OUTDIR/install-autobahn.log" 2>&1; then
  echo "autobahn: wstest install failed:" >&2; cat "$OUTDIR/install-autobahn.log" >&2; exit 2
fi
LOG="$OUTDIR/server.log"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$PY" "${WS_ECHO:-$ROOT/tests/conformance/ws_echo.py}" --port "$PORT" --compression ${WS_ECHO_ARGS:-} >"$LOG" 2>&1 &
SERVER=$!
stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
trap stop EXIT
for _ in $(seq 200); do
  grep -q "ws_echo on" "$LOG" 2>/dev/null && break
  if ! kill -0 "$SERVER" 2>/dev/null; then echo "autobahn: ws_echo.py died:" >&2; cat "$LOG" >&2; exit 2; fi
  sleep 0.1
done
grep -q "ws_echo on" "$LOG" || { echo "autobahn: ws_echo.py did not start" >&2; cat "$LOG" >&2; exit 2; }

SPEC="$OUTDIR/fuzzingclient.json"
"$PY" - "$SPEC" "$OUTDIR" "$AGENT" "ws://127.0.0.1:$PORT/" "$CASES" "$EXCL" <<'EOF'
import json, sys
spec, outdir, agent, url, cases, excl = sys.argv[1:]
split = lambda s: [c.strip() for c in s.split(",") if c.strip()]
json.dump({"outdir": outdir, "servers": [{"agent": agent, "url": url}], "cases": split(cases) or ["*"],
           "exclude-cases": split(excl), "exclude-agent-cases": {}}, open(spec, "w"), indent=2)
EOF
echo "autobahn: wstest -m fuzzingclient against ws://127.0.0.1:$PORT/ (cases=$CASES exclude=${EXCL:-none}), reports in $OUTDIR"
T0=$(date +%s.%N)
( cd "$OUTDIR" && timeout -k 10 "$TIMEOUT" "$WSTEST" -m fuzzingclient -s "$SPEC" ) >"$OUTDIR/wstest.log" 2>&1
RC=$?
T1=$(date +%s.%N)
echo "autobahn: wstest exit $RC after $("$PY" -c "print(f'{$T1-$T0:.1f}')") s"
if grep -q "Traceback" "$LOG"; then
  echo "autobahn: ws_echo.py logged tracebacks, see $LOG" >&2
fi
if [[ ! -f "$OUTDIR/index.json" ]]; then
  echo "autobahn: no index.json (server not reachable? timed out?) - see $OUTDIR/wstest.log"
  echo "autobahn: 0 ok, 0 non-strict, 0 failed, 0 unimplemented of 0"
  exit 2
fi
"$PY" "$ROOT/scripts/autobahn_summary.py" "$OUTDIR/index.json"
