#!/usr/bin/env bash
# The browser chat demo on a fresh machine: sets up what it needs, then serves it.
#   ./scripts/demo.sh                    http://127.0.0.1:8000
#   ./scripts/demo.sh --host 0.0.0.0 --port 8080
# Needs Python 3.11+ and Node.js 18+ with npm. Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[demo] %s\n' "$*" >&2; }

# Python: .venv with sioserver installed (editable) from this checkout
if [ ! -x .venv/bin/python ]; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "python3 is $(python3 --version 2>&1); sioserver needs 3.11+"; exit 1; }
  say "creating .venv"
  python3 -m venv .venv
fi
installed() {  # sioserver imports from this checkout, and was installed after pyproject.toml last changed
  .venv/bin/python -c 'import pathlib, sys, aiohttp, sioserver
sys.exit(not pathlib.Path(sioserver.__file__).resolve().is_relative_to(pathlib.Path.cwd().resolve()))' 2>/dev/null \
    && [ sioserver.egg-info/PKG-INFO -nt pyproject.toml ]
}
if ! installed; then
  say "pip install -e . (into .venv)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi

# Node: socket.io-client (the page's bundle) from clients/browser/package-lock.json
dir=clients/browser
if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null 2>&1 || { say "npm not found: install Node.js 18+ and npm (apt-get install nodejs npm)"; exit 1; }
  say "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

exec .venv/bin/python clients/browser/demo.py "$@"
