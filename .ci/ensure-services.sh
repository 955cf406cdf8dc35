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

# The binary is needed even when a Redis already answers: fault tests start their own.
have redis-server || apt_install redis-server
if ! redis_up; then
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "ensure-services: Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "ensure-services: Redis answers on 127.0.0.1:6379"

# --- PostgreSQL (make test's second run; docs/operations.md "PostgreSQL and Redis") ---
# Wanted: 127.0.0.1:$PG_PORT, user postgres, trust auth over TCP. An answering server is
# used as it is. Otherwise: a stopped Debian cluster on that port is started; failing
# that, a cluster of our own (initdb --auth=trust) is made under /var/lib/postgresql.
PG_PORT=${KEYHOUSE_CI_PG_PORT:-5432}
pg_up() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PG_PORT" 2>/dev/null; }
pg_bin() { find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1; }
# Package scripts must not start a cluster of their own (Debian's "main" wants
# password auth); an existing policy-rc.d is left as it is.
apt_install_no_start() {
    local ours=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        ours=1
    fi
    apt_install "$@" || rc=$?
    [ "$ours" = 0 ] || rm -f /usr/sbin/policy-rc.d
    return "$rc"
}
if ! pg_up; then
    [ -n "$(pg_bin)" ] || apt_install_no_start postgresql
    bin=$(pg_bin)
    [ -x "$bin/pg_ctl" ] || { echo "ensure-services: PostgreSQL did not install" >&2; exit 1; }
    cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}')
    if [ -n "$cluster" ]; then
        # shellcheck disable=SC2086 # "version name"
        pg_ctlcluster $cluster start
    else
        pgdata=/var/lib/postgresql/keyhouse-ci-$(basename "$(dirname "$bin")")-$PG_PORT
        if [ ! -s "$pgdata/PG_VERSION" ]; then
            install -d -o postgres -g postgres -m 700 "$pgdata"
            runuser -u postgres -- "$bin/initdb" -D "$pgdata" -U postgres --auth=trust \
                --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        fi
        runuser -u postgres -- "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$pgdata" \
            start >/dev/null
    fi
    for _ in $(seq 1 100); do pg_up && break; sleep 0.1; done
    pg_up || { echo "ensure-services: PostgreSQL did not start on 127.0.0.1:$PG_PORT" >&2; exit 1; }
fi
if command -v psql >/dev/null 2>&1 \
    && ! psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    echo "ensure-services: PostgreSQL on 127.0.0.1:$PG_PORT refuses user postgres without" \
        "a password; the tests need trust auth for local TCP (pg_hba.conf)" >&2
    exit 1
fi
echo "ensure-services: PostgreSQL answers on 127.0.0.1:$PG_PORT"
# --- end PostgreSQL ---

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

# --- Chromium (tests/browser): Playwright drives Debian's build; no browser is downloaded ---
[ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromium ] || { echo "ensure-services: /usr/bin/chromium is missing" >&2; exit 1; }
echo "ensure-services: Chromium is installed (/usr/bin/chromium)"
# --- end Chromium ---

# --- SAML: tests/saml_idp.py's pysaml2 IdP signs with Debian's xmlsec1 CLI ---
have xmlsec1 || apt_install xmlsec1
have xmlsec1 || { echo "ensure-services: xmlsec1 is missing" >&2; exit 1; }
echo "ensure-services: xmlsec1 is installed ($(xmlsec1 --version))"
# tests/web/test_saml_simplesamlphp.py: Debian's SimpleSAMLphp served by `php -S`.
if [ ! -f /usr/share/simplesamlphp/www/saml2/idp/SSOService.php ] || ! have php; then
    apt_install --no-install-recommends simplesamlphp php-cli php-xml php-mbstring
fi
echo "ensure-services: SimpleSAMLphp is installed (served by php -S in the tests)"

# --- nginx (tests/proxy: remote-user SSO behind auth_basic, forward-auth auth_request) ---
# Only the binary: the tests run their own nginx on free ports; the package's own
# daemon on :80 is never started (policy-rc.d).
[ -x /usr/sbin/nginx ] || apt_install_no_start nginx-light || apt_install_no_start nginx
[ -x /usr/sbin/nginx ] || { echo "ensure-services: nginx is missing" >&2; exit 1; }
echo "ensure-services: nginx is installed ($(/usr/sbin/nginx -v 2>&1))"
# --- end nginx ---

# --- Caddy (tests/gateway: forward_auth); only the binary, its service never started ---
[ -x /usr/bin/caddy ] || apt_install_no_start caddy
[ -x /usr/bin/caddy ] || { echo "ensure-services: caddy is missing" >&2; exit 1; }
echo "ensure-services: caddy is installed ($(/usr/bin/caddy version 2>&1 | head -n1))"
# --- end Caddy ---
