"""The README's promise: the demo login and its curl example work against a real server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import ARTIFACTS, keyhouse_cli, start_server, stop

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    """The shell commands of the README's first ```sh blocks after "## Try it"."""
    text = README.read_text().split("## Try it", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    return [block.replace("\\\n", " ") for block in blocks]


@pytest.mark.e2e
def test_readme_starts_with_the_two_commands() -> None:
    lines = [line for line in README.read_text().splitlines() if line.startswith("make ")]
    assert [line.split()[:2] for line in lines] == [["make", "serve"], ["make", "test"]]


@pytest.mark.e2e
def test_readme_curl_example_works_against_the_demo(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    banner = keyhouse_cli(data_dir, "demo", "--port", "9991")
    assert "demo@example.com" in banner and "keyhouse-demo-password" in banner
    # Idempotent: make serve runs it on every start.
    assert keyhouse_cli(data_dir, "demo") == banner

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, base_url = start_server(data_dir, "keyhouse demo", ARTIFACTS / "demo-server.log")
    try:
        fetch, users_me = readme_commands()[:2]
        fetch = fetch.replace("http://127.0.0.1:9991", base_url)
        out = subprocess.run(
            shlex.split(fetch), capture_output=True, text=True, timeout=30, check=True
        ).stdout
        body = json.loads(out)
        assert body["result"] == "success" and body["email"] == "demo@example.com"
        assert re.fullmatch(r"[A-Za-z0-9]{32}", body["api_key"])

        users_me = users_me.replace("http://127.0.0.1:9991", base_url)
        users_me = users_me.replace("<api_key>", body["api_key"])
        me = json.loads(
            subprocess.run(
                shlex.split(users_me), capture_output=True, text=True, timeout=30, check=True
            ).stdout
        )
        assert (me["result"], me["email"], me["user_id"]) == (
            "success",
            "demo@example.com",
            body["user_id"],
        )
    finally:
        stop(proc)
