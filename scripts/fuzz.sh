#!/usr/bin/env bash
# Long fuzzing runs of every parser (the suite runs the same targets for a few seconds).
#
#   ./scripts/fuzz.sh                      every target, 180 s each
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh ws_frames sio_json
#
# With atheris installed in .venv (pip install atheris; wheels for CPython 3.11 on Linux), each
# target runs under libFuzzer with coverage feedback: tests/fuzz/atheris_main.py TARGET. Without
# it (or with FUZZ_HYPOTHESIS=1), the hypothesis tests run with a large example budget instead. Corpora and crash inputs go to
# $FUZZ_DIR (default /tmp/sioserver-fuzz); a crash input becomes an @example of the target's test
# in tests/fuzz/test_fuzz.py. Exits non-zero if any target crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SECONDS_EACH=${FUZZ_SECONDS:-180}
OUT=${FUZZ_DIR:-/tmp/sioserver-fuzz}
ALL=(ws_frames ws_frames_structured ws_handshake deflate_roundtrip deflate_frames eio_payload sio_json sio_msgpack
     http_head)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
mkdir -p "$OUT"

if [ -n "${FUZZ_HYPOTHESIS:-}" ] || ! $PY -c 'import atheris' 2>/dev/null; then
  echo "hypothesis instead of atheris (FUZZ_HYPOTHESIS set, or atheris not installed): FUZZ_EXAMPLES=${FUZZ_EXAMPLES:-20000}"
  keys=$(printf ' or %s' "${TARGETS[@]}"); keys=${keys# or }
  FUZZ_EXAMPLES=${FUZZ_EXAMPLES:-20000} exec .venv/bin/pytest tests/fuzz/test_fuzz.py -q -p no:cacheprovider \
    --hypothesis-show-statistics -k "$keys"
fi

status=0
printf '%-22s %12s %8s %10s  %s\n' target executions seconds exec/s result
for target in "${TARGETS[@]}"; do
  corpus="$OUT/corpus-$target"
  mkdir -p "$corpus" "$OUT/crashes"
  log="$OUT/$target.log"
  $PY tests/fuzz/atheris_main.py "$target" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -max_len=8192 -print_final_stats=1 -artifact_prefix="$OUT/crashes/$target-" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $2, $5}')
  read -r n secs <<<"${runs:-0 0}"
  if [ -z "$runs" ]; then
    n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -1)
    secs=$SECONDS_EACH
  fi
  rate=$(( ${secs:-0} > 0 ? ${n:-0} / secs : 0 ))
  result=ok
  if [ $rc -ne 0 ]; then
    result="CRASH (rc $rc): $(ls -t "$OUT/crashes/$target-"* 2>/dev/null | head -1) - see $log"
    status=1
  fi
  printf '%-22s %12s %8s %10s  %s\n' "$target" "${n:-?}" "${secs:-?}" "$rate" "$result"
done
exit $status
