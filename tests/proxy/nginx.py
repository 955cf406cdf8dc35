"""A throwaway nginx (Debian's binary) in front of a test's keyhouse: its own dir, port and config.

The system nginx is never touched: each instance gets a directory of its own
(``-p``) holding its config, pid file, logs and temp paths, and listens on a free
127.0.0.1 port. A test gives the ``server { … }`` part as a template; the frame
around it (one worker, no daemon, logs and temp paths in the directory) is here,
so any proxy test (remote-user ``auth_basic``, ``auth_request`` forward-auth…)
starts its nginx the same way. Placeholders are ``{{name}}``: ``{{listen}}``
(``127.0.0.1:<port>``) and ``{{dir}}`` are always filled, the rest from the
caller. nginx's own ``$variables`` pass through untouched.

Where nginx is not installed, ``nginx_binary`` skips (fails on CI, where
``make test`` installs it: .ci/ensure-services.sh).
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ci import missing
from tests.ports import free_port

NGINX = "/usr/sbin/nginx"
STARTUP_TIMEOUT = 15.0

FRAME = """\
{{user}}
worker_processes 1;
daemon off;
master_process on;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log info;
events { worker_connections 256; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/tmp/body;
    proxy_temp_path {{dir}}/tmp/proxy;
    fastcgi_temp_path {{dir}}/tmp/fastcgi;
    uwsgi_temp_path {{dir}}/tmp/uwsgi;
    scgi_temp_path {{dir}}/tmp/scgi;
{{servers}}
}
"""


def nginx_binary() -> str:
    path = NGINX if os.access(NGINX, os.X_OK) else shutil.which("nginx")
    if path is None:
        missing(f"nginx is not installed ({NGINX}): .ci/ensure-services.sh installs it")
    return path


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; an unknown one is a test bug, said at once."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"nginx template: no value for {{{{{name}}}}}")
        return values[name]

    return re.sub(r"\{\{(\w+)\}\}", fill, template)


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry nginx's auth_basic accepts: ``{SSHA}`` (salted SHA-1, RFC 2307).

    Hand-written because the stdlib's ``crypt`` is gone in Python 3.13 and
    ``openssl passwd`` need not be installed; nginx reads ``{SSHA}`` itself. Test
    passwords only: SHA-1 is no password hash for real use.
    """
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return f"{user}:{{SSHA}}{base64.b64encode(digest + salt).decode()}\n"


@dataclass
class Nginx:
    """A running nginx: where it listens and where it keeps its files."""

    proc: subprocess.Popen[bytes]
    dir: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> str:
        path = self.dir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """QUIT (graceful), then KILL the group if it lingers."""
        for sig, grace in ((signal.SIGQUIT, 10.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue


NginxFactory = Callable[..., Nginx]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_nginx(directory: Path, servers: str, values: dict[str, str] | None = None) -> Nginx:
    """nginx with ``servers`` (a template of ``server`` blocks) on a free port, checked with -t."""
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    # Run as root, the master would hand its workers to "nobody", who cannot read
    # a test's private tmp dir; as anyone else the directive is refused, so leave it out.
    user = f"user {pwd.getpwuid(0).pw_name};" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    last_error = ""
    for _attempt in range(3):  # the free port may be taken before nginx binds it
        (directory / "nginx.pid").unlink(missing_ok=True)
        port = free_port()
        filled = {"listen": f"127.0.0.1:{port}", "dir": str(directory), **(values or {})}
        conf.write_text(
            render(FRAME, {"user": user, "dir": str(directory), "servers": render(servers, filled)})
        )
        command = [
            binary,
            "-p",
            str(directory),
            "-c",
            str(conf),
            "-e",
            str(directory / "error.log"),
        ]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError(
                f"nginx -t refused the config:\n{check.stderr}\n{conf.read_text()}"
            )
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stop() gets the worker too
        )
        nginx = Nginx(proc, directory, port)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            # The pid file is written after the sockets are bound: the port is ours.
            if (directory / "nginx.pid").exists() and _listening(port):
                return nginx
            time.sleep(0.05)
        last_error = nginx.error_log()
        nginx.stop()
    raise AssertionError(f"nginx did not start:\n{last_error}")


@pytest.fixture(scope="module")
def nginx_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxFactory]:
    """Start nginx instances for a test module (``factory(servers, values)``); all stopped after."""
    started: list[Nginx] = []

    def factory(servers: str, values: dict[str, str] | None = None) -> Nginx:
        nginx = start_nginx(tmp_path_factory.mktemp("nginx"), servers, values)
        started.append(nginx)
        return nginx

    try:
        yield factory
    finally:
        for nginx in started:
            nginx.stop()
