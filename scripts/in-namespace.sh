#!/usr/bin/env bash
# Runs inside `unshare -m -n`: a private /run/pcscd (so our pcscd is the only one
# the tests see) and a private loopback (so vpcd's fixed ports 35963/35964 are ours).
set -euo pipefail
mount -t tmpfs tmpfs /run/pcscd
ip link set lo up
exec "$@"
