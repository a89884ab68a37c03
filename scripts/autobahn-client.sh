#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzingserver (wstest -m fuzzingserver) against sioclient's WebSocket layer
# (clients/python/sioclient/websocket.py, driven by tests/clients/autobahn_driver.py as an echo client).
#
#   ./scripts/autobahn-client.sh                  all cases (~10 min; 12.*/13.* permessage-deflate are most of it)
#   AUTOBAHN_FAST=1 ./scripts/autobahn-client.sh  without 9.*, 12.*, 13.*
#   AUTOBAHN_CASES="1.*,2.*" AUTOBAHN_EXCLUDE="9.*" ./scripts/autobahn-client.sh
#
# Reports: $AUTOBAHN_OUTDIR (default autobahn-reports/sioclient/), index.json per agent and case. wstest is
# installed by scripts/install-autobahn.sh when it is not there yet.
# Last line of output: "autobahn: N ok, M non-strict, K failed, U unimplemented of T".
# Exit status: 0 no FAILED case, 1 some FAILED, 2 could not run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WSTEST="$ROOT/.tools/bin/wstest"
AGENT="${AUTOBAHN_AGENT:-sioclient}"
OUTDIR="${AUTOBAHN_OUTDIR:-$ROOT/autobahn-reports/sioclient}"
CASES="${AUTOBAHN_CASES:-*}"
EXCL="${AUTOBAHN_EXCLUDE:-}"
if [[ "${AUTOBAHN_FAST:-0}" == 1 ]]; then EXCL="${EXCL:+$EXCL,}9.*,12.*,13.*"; fi

rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"; OUTDIR="$(cd "$OUTDIR" && pwd)"
if ! "$ROOT/scripts/install-autobahn.sh" >"$OUTDIR/install-autobahn.log" 2>&1; then
  echo "autobahn: wstest install failed:" >&2; cat "$OUTDIR/install-autobahn.log" >&2; exit 2
fi
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SPEC="$OUTDIR/fuzzingserver.json"
"$PY" - "$SPEC" "$OUTDIR" "$PORT" "$CASES" "$EXCL" <<'EOF'
import json, sys
spec, outdir, port, cases, excl = sys.argv[1:]
split = lambda s: [c.strip() for c in s.split(",") if c.strip()]
json.dump({"url": f"ws://127.0.0.1:{port}", "outdir": outdir, "cases": split(cases) or ["*"],
           "exclude-cases": split(excl), "exclude-agent-cases": {}}, open(spec, "w"), indent=2)
EOF

echo "autobahn: wstest -m fuzzingserver on 127.0.0.1:$PORT (cases=$CASES exclude=${EXCL:-none}), reports in $OUTDIR"
( cd "$OUTDIR" && exec "$WSTEST" -m fuzzingserver -s "$SPEC" -u 0 ) >"$OUTDIR/wstest.log" 2>&1 &
SERVER=$!
stop() { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
trap stop EXIT
for _ in $(seq 200); do
  "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))" 2>/dev/null && break
  if ! kill -0 "$SERVER" 2>/dev/null; then echo "autobahn: wstest died:" >&2; cat "$OUTDIR/wstest.log" >&2; exit 2; fi
  sleep 0.1
done

T0=$(date +%s.%N)
"$PY" "$ROOT/tests/clients/autobahn_driver.py" "ws://127.0.0.1:$PORT" --agent "$AGENT" 2>"$OUTDIR/driver.log"
RC=$?
T1=$(date +%s.%N)
echo "autobahn: driver exit $RC after $("$PY" -c "print(f'{$T1-$T0:.1f}')") s (log $OUTDIR/driver.log)"
stop; trap - EXIT
if [[ ! -f "$OUTDIR/index.json" ]]; then
  echo "autobahn: no index.json - see $OUTDIR/wstest.log and $OUTDIR/driver.log"
  echo "autobahn: 0 ok, 0 non-strict, 0 failed, 0 unimplemented of 0"
  exit 2
fi
"$PY" "$ROOT/scripts/autobahn_summary.py" "$OUTDIR/index.json"
