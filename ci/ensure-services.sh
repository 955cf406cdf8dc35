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
