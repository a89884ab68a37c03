"""Summarises an Autobahn|Testsuite report (index.json): what is not OK, by behaviour, then as the last line
``autobahn: N ok, M non-strict, K failed, U unimplemented of T`` (T counts INFORMATIONAL cases too).
Exit status 0 when no case FAILED and at least one ran, 1 otherwise.

    python scripts/autobahn_summary.py REPORTS/index.json
"""

from __future__ import annotations

import collections
import json
import sys


def main(path: str) -> int:
    with open(path) as f:
        index = json.load(f)
    rows = sorted(((cid, case) for agent in index.values() for cid, case in agent.items()),
                  key=lambda row: [int(x) for x in row[0].split(".")])
    count = collections.Counter(case["behavior"] for _, case in rows)
    for behavior in ("FAILED", "NON-STRICT", "UNIMPLEMENTED", "INFORMATIONAL"):
        ids = [cid for cid, case in rows if case["behavior"] == behavior]
        if ids:
            print(f"autobahn: {behavior} ({len(ids)}): {' '.join(ids[:60])}{' ...' if len(ids) > 60 else ''}")
    close = [cid for cid, case in rows if case["behaviorClose"] not in ("OK", "INFORMATIONAL")]
    if close:
        print(f"autobahn: close-behavior not OK ({len(close)}): {' '.join(close[:60])}")
    print(f"autobahn: total case duration {sum(case['duration'] for _, case in rows) / 1000:.1f} s")
    print(f"autobahn: {count['OK']} ok, {count['NON-STRICT']} non-strict, {count['FAILED']} failed, "
          f"{count['UNIMPLEMENTED']} unimplemented of {len(rows)}")
    return 1 if count["FAILED"] or not rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
