#!/usr/bin/env bash
# Branch coverage of the protocol cores (sioserver/proto) from their own tests (tests/proto): must be 100%.
#   ./scripts/proto-coverage.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp)
trap 'rm -f "$data"' EXIT
COVERAGE_FILE=$data .venv/bin/python -m coverage run --branch --source=sioserver.proto -m pytest -p no:cacheprovider -q tests/proto
COVERAGE_FILE=$data .venv/bin/python -m coverage report -m --skip-covered --fail-under=100
