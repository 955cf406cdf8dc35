#!/usr/bin/env bash
# What `make bench` needs beyond the project's .venv (which the Makefile builds first):
#   - wrk, from Debian, when it is missing;
#   - nginx's binary, from Debian, for the gateway stage (bench/nginx.py runs its own
#     instance; the package's service is kept from starting);
#   - the DRF peer's own venv, bench/.venv-peer, with djangorestframework and the very
#     versions of Django, gunicorn, granian and argon2-cffi that .venv runs (pinned from
#     `.venv/bin/pip freeze`), so the comparison measures code paths, not versions.
# Idempotent: a second run does nothing unless the pins or the requirements changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! command -v wrk >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "bench: installing wrk from Debian"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

if [ ! -x /usr/sbin/nginx ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "bench: installing nginx from Debian (its service is not started)"
    ours=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        ours=1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light >/dev/null \
        || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
    [ "$ours" = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi

PEER=bench/.venv-peer
REQ=bench/peers/drf/requirements.txt
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
.venv/bin/pip freeze \
    | grep -iE '^(django|gunicorn|granian|argon2-cffi|argon2-cffi-bindings|asgiref|sqlparse|cffi|pycparser)==' \
    >"$pins"
if [ ! -f "$PEER/.installed" ] || ! cmp -s "$pins" "$PEER/pins.txt" || [ "$REQ" -nt "$PEER/.installed" ]; then
    echo "bench: building the DRF peer's venv ($PEER)"
    rm -rf "$PEER"
    "$PYTHON" -m venv "$PEER"
    "$PEER/bin/pip" install --quiet --upgrade pip
    "$PEER/bin/pip" install --quiet -r "$REQ" -c "$pins"
    cp "$pins" "$PEER/pins.txt"
    touch "$PEER/.installed"
fi
