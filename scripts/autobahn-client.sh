#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzingserver (wstest -m fuzzingserver) against sioclient's WebSocket layer
# (clients/python/sioclient/websocket.py, driven by tests/clients/autobahn_driver.py as an echo client).
#
#   ./scripts/autobahn-client.sh                  all cases (~10 min; 12.*/13.* permessage-deflate are most of it)
#   AUTOBAHN_FAST=1 ./scripts/autobahn-client.sh  without 9.*, 12.*, 13.*
#   AUTOBAHN_CASES="1.*,2.*" AUTOBAHN_EXCLUDE="9.*" ./scripts/autobahn-client.sh
#
# Reports: $AUTOBAHN_OUTDIR (default autobahn-reports/sioclient/), index.json per agent and case.
# Last line of output: "autobahn: N ok, M non-strict, K failed, U unimplemented of T".
# Exit status: 0 no FAILED case, 1 some FAILED, 2 could not run.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED="$ROOT/../shared/tools/autobahn"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
WSTEST="$ROOT/.tools/bin/wstest"
AGENT="${AUTOBAHN_AGENT:-sioclient}"
OUTDIR="${AUTOBAHN_OUTDIR:-$ROOT/autobahn-reports/sioclient}"
CASES="${AUTOBAHN_CASES:-*}"
EXCL="${AUTOBAHN_EXCLUDE:-}"
if [[ "${AUTOBAHN_FAST:-0}" == 1 ]]; then EXCL="${EXCL:+$EXCL,}9.*,12.*,13.*"; fi

# wstest: use it if it runs; wait for an install another engineer has in progress; else install it.
wstest_ok() { [ -x "$WSTEST" ] && "$WSTEST" -a >/dev/null 2>&1; }
if ! wstest_ok && [ -d "$ROOT/.tools/autobahn-py27" ]; then
  echo "autobahn: a wstest install seems to be in progress, waiting up to 120 s" >&2
  for _ in $(seq 120); do wstest_ok && break; sleep 1; done
fi
if ! wstest_ok; then
  echo "autobahn: installing wstest under .tools/ (about 25 s)" >&2
  mkdir -p "$ROOT/.tools/bin"
  if ! PREFIX="$ROOT/.tools/autobahn-py27" BIN="$ROOT/.tools/bin" bash "$SHARED/install-autobahn.sh" \
      >"$ROOT/.tools/install-autobahn-client.log" 2>&1 || ! wstest_ok; then
    echo "autobahn: wstest install failed, see .tools/install-autobahn-client.log" >&2; exit 2
  fi
fi

rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"; OUTDIR="$(cd "$OUTDIR" && pwd)"
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
"$PY" - "$OUTDIR/index.json" <<'EOF'
import json, sys, collections
idx = json.load(open(sys.argv[1]))
rows = [(cid, c) for agent in idx.values() for cid, c in agent.items()]
rows.sort(key=lambda r: [int(x) for x in r[0].split(".")])
cnt = collections.Counter(c["behavior"] for _, c in rows)
for beh in ("FAILED", "NON-STRICT", "UNIMPLEMENTED", "INFORMATIONAL"):
    ids = [cid for cid, c in rows if c["behavior"] == beh]
    if ids:
        print(f"autobahn: {beh} ({len(ids)}): {' '.join(ids[:60])}{' ...' if len(ids) > 60 else ''}")
bc = [cid for cid, c in rows if c["behaviorClose"] not in ("OK", "INFORMATIONAL")]
if bc:
    print(f"autobahn: close-behavior not OK ({len(bc)}): {' '.join(bc[:60])}")
print(f"autobahn: total case duration {sum(c['duration'] for _, c in rows) / 1000:.1f} s")
print(f"autobahn: {cnt['OK']} ok, {cnt['NON-STRICT']} non-strict, {cnt['FAILED']} failed, "
      f"{cnt['UNIMPLEMENTED']} unimplemented of {len(rows)}")
sys.exit(1 if cnt["FAILED"] or not rows else 0)
EOF
