"""nginx for the gateway scenario: docs/gateway.md's recipe, and the same proxy without it.

One nginx of our own (``-p dir -c conf``, never the system's), three ports:

- *guarded*: the recipe's snippet, so each request is an ``auth_request`` to
  keyhouse's ``/auth/verify`` before the app;
- *direct*: the same ``proxy_pass`` to the app, no check;
- *app*: the trivial upstream, nginx itself answering ``200 ok``, so that the
  difference between the first two is what the check costs, nothing else.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from servers import HOST, REPO, get_status

NGINX = Path("/usr/sbin/nginx")
DOC = REPO / "docs" / "gateway.md"
# The addresses in the recipe (docs/gateway.md), replaced by the bench's own.
DOC_KEYHOUSE, DOC_APP = "127.0.0.1:9991", "127.0.0.1:8080"
HTTP_BLOCK = "# /etc/nginx/conf.d/keyhouse-gateway.conf  (http context)"
SERVER_BLOCK = "# /etc/nginx/snippets/keyhouse-gateway.conf  (server context)"


def recipe(first_line: str) -> str:
    """The fenced block of docs/gateway.md whose first line is ``first_line``."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOC.read_text(), flags=re.S):
        if block.splitlines()[0].strip() == first_line:
            return str(block)
    raise RuntimeError(f"docs/gateway.md has no block starting {first_line!r}")


def conf(dir: Path, keyhouse_port: int, guarded: int, direct: int, app: int) -> str:
    http = recipe(HTTP_BLOCK).replace(DOC_KEYHOUSE, f"{HOST}:{keyhouse_port}")
    http = http.replace(DOC_APP, f"{HOST}:{app}")
    (dir / "keyhouse-gateway.conf").write_text(recipe(SERVER_BLOCK))
    temp = "".join(
        f"    {kind}_temp_path {dir / 'tmp' / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the out dir as we do
    return f"""{user}daemon off;
worker_processes 1;
pid {dir / "nginx.pid"};
error_log {dir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
{http}
    server {{
        listen {HOST}:{guarded};
        include {dir / "keyhouse-gateway.conf"};
    }}
    server {{
        listen {HOST}:{direct};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
    server {{
        listen {HOST}:{app};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


class Nginx:
    """The bench's nginx; ``stop`` ends it by its pid."""

    def __init__(self, dir: Path, keyhouse_port: int, ports: tuple[int, int, int]) -> None:
        if not NGINX.exists():
            raise RuntimeError(f"{NGINX} is missing (bench/setup.sh installs it)")
        self.guarded, self.direct, self.app = ports
        dir.mkdir(parents=True, exist_ok=True)
        (dir / "tmp").mkdir(exist_ok=True)
        path = dir / "nginx.conf"
        path.write_text(conf(dir, keyhouse_port, *ports))
        self.log = (dir / "nginx.log").open("ab")
        self.proc = subprocess.Popen(
            [str(NGINX), "-p", str(dir), "-c", str(path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not get_status(self.app, "/"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start; see {dir / 'error.log'}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()

    def __enter__(self) -> Nginx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
