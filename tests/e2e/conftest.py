"""Fixtures for the e2e tests: a real keyhouse server and the real clients' venv."""

from __future__ import annotations

import atexit
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import missing
from tests.e2e.harness import (
    ARTIFACTS,
    CLIENTS_VENV,
    EMAIL,
    FULL_NAME,
    KEYHOUSE,
    Server,
    create_realm,
    create_user,
    start_server,
    stop,
)


@pytest.fixture(scope="session")
def keyhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server (own data dir, free port) with a root realm and one user made by the CLI."""
    if not KEYHOUSE.exists():
        pytest.fail(f"{KEYHOUSE} not found: run `make .venv/.installed`")
    data_dir = tmp_path_factory.mktemp("keyhouse-data")
    password = secrets.token_urlsafe(18)  # passes the strength policy; safe to type on a tty
    realm_name = f"E2E {secrets.token_hex(4)}"
    create_realm(data_dir, realm_name)
    create_user(data_dir, EMAIL, FULL_NAME, password)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "server.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, realm_name, log)
    atexit.register(stop, proc)  # a second line of defence if teardown never runs
    try:
        yield Server(base_url, EMAIL, password, data_dir)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def clients_venv() -> Path:
    """The venv with zulip-term and zulip: required on CI, optional on a laptop."""
    if not (CLIENTS_VENV / "bin" / "zulip-term").exists():
        missing(f"{CLIENTS_VENV}/bin/zulip-term is missing: run `make clients`")
    return CLIENTS_VENV


@pytest.fixture
def artifact_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test leaves its transcripts: test-artifacts/e2e/<test name>/ (gitignored)."""
    path = ARTIFACTS / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    return path
