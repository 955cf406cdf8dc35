#!/usr/bin/env bash
# What `make bench` needs beyond the project's .venv (which the Makefile builds first):
#   - wrk, from Debian, when it is missing;
#   - the DRF peer's own venv, bench/.venv-peer, with djangorestframework and the very
#     versions of Django, gunicorn and argon2-cffi that .venv runs (pinned from
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

PEER=bench/.venv-peer
REQ=bench/peers/drf/requirements.txt
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
.venv/bin/pip freeze \
    | grep -iE '^(django|gunicorn|argon2-cffi|argon2-cffi-bindings|asgiref|sqlparse|cffi|pycparser)==' \
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
