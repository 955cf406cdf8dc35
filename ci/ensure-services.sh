#!/usr/bin/env bash
# Make sure the services the tests talk to answer on loopback, installing and
# starting them when they don't (a fresh machine has none of this by hand).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if [ ! -f /tmp/.keyhouse-apt-updated ]; then
        apt-get update -qq && touch /tmp/.keyhouse-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_up() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379 && printf "PING\r\n" >&3 && head -c 5 <&3 | grep -q PONG' 2>/dev/null; }

if ! redis_up; then
    have redis-server || apt_install redis-server
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "ensure-services: Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "ensure-services: Redis answers on 127.0.0.1:6379"

# LDAP: tests/ldap_server.py runs its own throwaway slapd on a free loopback port, and
# python-ldap (no wheels) builds against the headers. A system slapd is never used.
ldap_pkgs=(slapd ldap-utils libldap2-dev libsasl2-dev)
missing=()
for pkg in "${ldap_pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Don't let the package build a dc=nodomain directory or start a daemon on :389;
    # an existing policy-rc.d (Docker images ship one) is left as it is.
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt_install "${missing[@]}"
fi
[ -x /usr/sbin/slapd ] || { echo "ensure-services: /usr/sbin/slapd is missing" >&2; exit 1; }
if timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/389' 2>/dev/null; then
    # Harmless (the tests pick their own port), but say so: it is not ours.
    echo "ensure-services: note: something (a system slapd?) listens on port 389; tests ignore it"
fi
echo "ensure-services: slapd and the LDAP headers are installed"
