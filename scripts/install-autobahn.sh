#!/usr/bin/env bash
# Installs Autobahn|Testsuite (autobahntestsuite 25.10.1 from PyPI) under .tools/ so that .tools/bin/wstest
# runs on Debian 12, without touching the system Python or the system's apt/dpkg state. Safe to run again:
# it does nothing when wstest already runs, and two runs at once wait for each other (a lock in .tools/).
#
#   ./scripts/install-autobahn.sh        (about 30 s; needs the Debian mirrors and PyPI)
#
# Why not a Python 3 venv: autobahntestsuite 25.10.1 is Python 2.7 code (print statements, implicit
# relative imports; it pins Twisted 19.10 and autobahn 0.10.9). `pip install autobahntestsuite` into a
# Python 3 venv succeeds, but `wstest` dies at import. Debian 12 has no python2.7, so this takes CPython
# 2.7.18 from Debian 11 (bullseye) packages through a private apt configuration (this machine's own
# mirrors, asked for bullseye), unpacks them with `dpkg -x` under .tools/autobahn-py27/root and runs that
# interpreter relocated (PYTHONHOME, LD_LIBRARY_PATH).
#
# Environment: PREFIX (default .tools/autobahn-py27), BIN (default .tools/bin), PYTHON (a Python 3 with
# pip, used only to download pip for 2.7; default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREFIX="${PREFIX:-$ROOT/.tools/autobahn-py27}"
BIN="${BIN:-$ROOT/.tools/bin}"
PY3="${PYTHON:-}"
if [ -z "$PY3" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY3="$ROOT/.venv/bin/python"; else PY3=python3; fi
fi
WSTEST="$BIN/wstest"

mkdir -p "$BIN" "$(dirname "$PREFIX")"
exec 9>"$(dirname "$PREFIX")/.install-autobahn.lock"
flock 9   # another install (another worktree, a test run) finishes first; then wstest runs below
if [ -x "$WSTEST" ] && "$WSTEST" -a >/dev/null 2>&1; then
  echo "wstest present: $WSTEST"
  exit 0
fi
rm -rf "$PREFIX"

A="$PREFIX/apt"
mkdir -p "$A/etc/apt/apt.conf.d" "$A/etc/apt/preferences.d" "$A/etc/apt/sources.list.d" \
         "$A/var/lib/apt/lists/partial" "$A/var/cache/apt/archives/partial" "$A/var/lib/dpkg" \
         "$PREFIX/debs" "$PREFIX/root" "$PREFIX/bin" "$PREFIX/site" "$PREFIX/wheels"

# 1. CPython 2.7.18 from bullseye: downloaded with a private apt state, extracted (not installed).
#    The mirrors are this machine's own (deb822 sources or sources.list), asked for bullseye.
main_uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1 || true)
sec_uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep security | head -n1 || true)
[ -n "$main_uri" ] || main_uri=$(awk '/^deb / && !/security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$sec_uri" ] || sec_uri=$(awk '/^deb / && /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
main_uri="${main_uri:-http://deb.debian.org/debian}"
sec_uri="${sec_uri:-http://deb.debian.org/debian-security}"
cat > "$A/etc/apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $main_uri bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $sec_uri bullseye-security main
EOF
cp /var/lib/dpkg/status "$A/var/lib/dpkg/status"
cat > "$A/apt.conf" <<EOF
Dir::Etc "$A/etc/apt";
Dir::State "$A/var/lib/apt";
Dir::Cache "$A/var/cache/apt";
Dir::State::status "$A/var/lib/dpkg/status";
EOF
# as root, apt would hand the download to the _apt user, who may not write under PREFIX
[ "$(id -u)" != 0 ] || echo 'APT::Sandbox::User "root";' >> "$A/apt.conf"
echo "autobahn: CPython 2.7 from Debian bullseye ($main_uri)"
APT_CONFIG="$A/apt.conf" apt-get update -qq
( cd "$PREFIX/debs" && APT_CONFIG="$A/apt.conf" apt-get download -qq libpython2.7-minimal python2.7-minimal \
    libpython2.7-stdlib libpython2.7 libpython2.7-dev python2.7 libffi7 libssl1.1 )
for f in "$PREFIX"/debs/*.deb; do dpkg -x "$f" "$PREFIX/root"; done
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")

cat > "$PREFIX/bin/python2.7" <<EOF
#!/bin/sh
# relocated Debian bullseye CPython 2.7 (extracted with dpkg -x; not installed system-wide)
export PYTHONHOME=$PREFIX/root/usr
export LD_LIBRARY_PATH=$PREFIX/root/usr/lib/$MULTIARCH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
exec $PREFIX/root/usr/bin/python2.7 "\$@"
EOF
chmod +x "$PREFIX/bin/python2.7"
# packages go to $PREFIX/site, added as a real site dir (so the zope.* namespace .pth files work)
mkdir -p "$PREFIX/root/usr/lib/python2.7/dist-packages"
echo "import site; site.addsitedir('$PREFIX/site')" > "$PREFIX/root/usr/lib/python2.7/dist-packages/zz-autobahn-site.pth"
PY="$PREFIX/bin/python2.7"

# 2. pip for Python 2.7 (the last one for 2.7), downloaded with Python 3's pip, run from its wheel
echo "autobahn: pip for Python 2.7"
quiet() { grep -vE "DEPRECATION|is ignored|already exists" || true; }
"$PY3" -m pip download -q --no-deps -d "$PREFIX/wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 2>&1 | quiet
"$PY" "$PREFIX/wheels/pip-20.3.4-py2.py3-none-any.whl/pip" install -q --no-cache-dir --target "$PREFIX/site" \
    --no-index --find-links "$PREFIX/wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1 2>&1 | quiet

# 3. autobahntestsuite 25.10.1 and the set its egg-info pins (its sdist has no requirements.txt, so pip
#    alone would install it without dependencies)
cat > "$PREFIX/requirements-py27.txt" <<'EOF'
autobahntestsuite==25.10.1
autobahn[accelerate,twisted]==0.10.9
Twisted==19.10.0
txaio==2.1.0
incremental==16.10.1
zope.interface==4.6.0
six==1.16.0
jinja2==2.11.3
markupsafe==1.1.1
Werkzeug==1.0.1
klein==17.10.0
pyOpenSSL==19.1.0
cryptography==3.3.2
service_identity==18.1.0
unittest2==1.1.0
EOF
echo "autobahn: autobahntestsuite 25.10.1 and its pinned dependencies"
# wsaccel and ujson (the [accelerate] extra) compile against the extracted 2.7 headers
CFLAGS="-I$PREFIX/root/usr/include -I$PREFIX/root/usr/include/python2.7" \
  "$PY" -m pip install -q --no-cache-dir --target "$PREFIX/site" -r "$PREFIX/requirements-py27.txt" 2>&1 | quiet

# 4. the wstest wrapper, written last: its presence means the install is complete
cat > "$WSTEST.tmp" <<EOF
#!/bin/sh
# wstest from autobahntestsuite 25.10.1 on relocated CPython 2.7 ($PREFIX), by scripts/install-autobahn.sh
exec $PY -W ignore -c 'import sys; sys.argv[0]="wstest"; from autobahntestsuite.wstest import run; run()' "\$@"
EOF
chmod +x "$WSTEST.tmp"
"$WSTEST.tmp" -a >/dev/null
mv "$WSTEST.tmp" "$WSTEST"
echo "autobahn: wstest installed: $WSTEST ($("$WSTEST" -a 2>&1 | head -n1))"
