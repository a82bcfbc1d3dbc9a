#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root):
#   bash scripts/dev.sh demo   -> install everything, then run `simsync demo`
#   bash scripts/dev.sh test   -> install everything, then ruff + mypy + pytest
#   bash scripts/dev.sh setup  -> install only
# The tests run inside a private mount+network namespace so that their pcscd,
# vpcd ports and servers never meet anything else on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"

APT_PACKAGES=(
    pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools
    mosquitto mosquitto-clients
    dbus libdbus-1-dev libglib2.0-dev
    iproute2 util-linux gcc make pkg-config
    python3-dev python3-venv
    systemd procps  # systemd-analyze verify/security on the units; /bin/kill in ExecReload
    systemd-container  # systemd-nspawn: boots a real systemd to run the units (tests/systemd)
)

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/dev.sh: run as root (it installs Debian packages and uses namespaces)" >&2
        exit 1
    fi
}

setup_apt() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    # A pcscd started by systemd/socket activation outside our namespace would be harmless
    # (the tests use a private /run/pcscd), but never leave a stale one of ours around.
}

setup_venv() {
    local py=${PYTHON:-python3}
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "scripts/dev.sh: need Python >= 3.11 (found $("$py" --version 2>&1))" >&2
        exit 1
    fi
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    local stamp="$VENV/.simsync-installed"
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "== pip install -e .[test]"
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q -e ".[test]"
        echo "$want" > "$stamp"
    fi
    # Bytecode for our packages now, not at each command's first start (pip already
    # compiles the dependencies it installs); quick when nothing changed.
    "$VENV/bin/python" -m compileall -q -j 0 daemon transports cardio simcard syncproto pda bench
}

setup() {
    need_root
    setup_apt
    setup_venv
}

run_tests() {
    echo "== ruff"
    "$VENV/bin/ruff" check --no-cache .
    "$VENV/bin/ruff" format --check --no-cache .
    echo "== mypy (strict)"
    "$VENV/bin/mypy"
    echo "== pytest (in a private mount + network namespace)"
    mkdir -p /run/pcscd
    exec unshare -m -n --propagation private -- \
        bash "$ROOT/scripts/in-namespace.sh" "$VENV/bin/python" -m pytest "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    demo) setup; exec "$VENV/bin/simsync" demo "$@" ;;
    test) setup; run_tests "$@" ;;
    *) echo "usage: bash scripts/dev.sh setup|demo|test [args...]" >&2; exit 2 ;;
esac
