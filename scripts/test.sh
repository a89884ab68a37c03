#!/usr/bin/env bash
# Installs everything the tests need (apt, pip, npm, Autobahn) and runs every test, lint and type check.
# Works on a fresh Debian machine; safe to run again (each step is skipped when already done).
#   ./scripts/test.sh               everything
#   ./scripts/test.sh -k polling    extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
step() { printf '\n== %s\n' "$*"; }

step "system packages"
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "node $(node --version), redis-server present"
fi

step "python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.sioserver-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test,uvloop]' -e clients/python
  touch "$stamp"
fi
.venv/bin/python -c 'import aiohttp, msgpack, redis; print("aiohttp", aiohttp.__version__)'

step "node peers (tests/interop, clients/browser, bench)"
for dir in tests/interop clients/browser bench; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

step "Autobahn|Testsuite (wstest, under .tools/)"
./scripts/install-autobahn.sh

step "ruff"
.venv/bin/ruff check .
step "mypy (strict)"
.venv/bin/mypy

step "pytest"
exec .venv/bin/pytest -p no:cacheprovider -rs "$@"
