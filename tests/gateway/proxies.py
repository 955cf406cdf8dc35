"""Real proxies for the gateway tests: Debian's nginx and Caddy, running docs/gateway.md's recipes.

Never the system's instances: each proxy gets its own directory (config, pid,
logs, temp and state paths), a free loopback port, and is stopped by its own
process id. The configuration is the documentation's, read from
docs/gateway.md, with only the addresses changed, so the recipe people copy is
the one the tests run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port
from tests.proxy.nginx import start_nginx

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "gateway.md"
# The addresses the recipes use (docs/gateway.md): keyhouse, and the app behind the proxy.
DOC_KEYHOUSE = "127.0.0.1:9991"
DOC_APP = "127.0.0.1:8080"
START_TIMEOUT = 20.0


def recipe(first_line: str) -> str:
    """The fenced block of docs/gateway.md whose first line is ``first_line``."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), flags=re.S):
        if block.splitlines()[0].strip() == first_line:
            return str(block)
    raise AssertionError(f"docs/gateway.md has no block starting {first_line!r}")


def _addresses(text: str, keyhouse_port: int, app_port: int) -> str:
    assert DOC_KEYHOUSE in text
    return text.replace(DOC_KEYHOUSE, f"127.0.0.1:{keyhouse_port}").replace(
        DOC_APP, f"127.0.0.1:{app_port}"
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Proxy:
    """A proxy process of ours; ``stop`` ends it (and only it) by its pid."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "proxy.log"

    def _spawn(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log.read_text()[-3000:]}")
            if _listening(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.argv[0]} did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


def nginx_servers(dir: Path, keyhouse_port: int, app_port: int) -> str:
    """The recipe's http-context snippet and a server including its server-context one.

    A template for tests/proxy/nginx.py's frame (``{{listen}}`` is its free port).
    """
    http = _addresses(
        recipe("# /etc/nginx/conf.d/keyhouse-gateway.conf  (http context)"),
        keyhouse_port,
        app_port,
    )
    (dir / "keyhouse-gateway.conf").write_text(
        recipe("# /etc/nginx/snippets/keyhouse-gateway.conf  (server context)")
    )
    return f"""{http}
    server {{
        listen {{{{listen}}}};
        server_name _;
        include {dir / "keyhouse-gateway.conf"};
    }}
"""


class Nginx(Proxy):
    """Debian's nginx with the recipe, started by the one nginx fixture (tests/proxy/nginx.py)."""

    def start(self, keyhouse_port: int, app_port: int) -> Nginx:
        self.dir.mkdir(parents=True, exist_ok=True)
        started = start_nginx(self.dir, nginx_servers(self.dir, keyhouse_port, app_port))
        self.proc, self.port = started.proc, started.port
        return self


def caddyfile(port: int, keyhouse_port: int, app_port: int, storage: Path) -> str:
    """The recipe's site on plain http at ``port``; no admin endpoint, no TLS, own storage."""
    site = _addresses(recipe("# /etc/caddy/Caddyfile"), keyhouse_port, app_port)
    site = site.replace("avianforum.ca, *.avianforum.ca {", f"http://127.0.0.1:{port} {{", 1)
    assert f"http://127.0.0.1:{port}" in site
    return f"""{{
	admin off
	auto_https off
	storage file_system {storage}
}}

{site}"""


class Caddy(Proxy):
    """Debian's caddy with a Caddyfile of ours: no admin port (2019), no system paths."""

    def start(self, keyhouse_port: int, app_port: int) -> Caddy:
        binary = shutil.which("caddy")
        if binary is None:
            raise FileNotFoundError("caddy is missing: apt-get install caddy")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        conf = self.dir / "Caddyfile"
        conf.write_text(caddyfile(self.port, keyhouse_port, app_port, self.dir / "storage"))
        home = str(self.dir / "home")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "XDG_DATA_HOME": home,
            "XDG_CONFIG_HOME": home,
        }
        self.argv = [binary, "run", "--config", str(conf), "--adapter", "caddyfile"]
        self._spawn()
        return self
