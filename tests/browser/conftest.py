"""A real browser against a real server: Debian's Chromium driven by Playwright.

The pages are plain HTML forms, so most of their behaviour is covered by Django's
test client (tests/web/). What only a browser shows: the labels lead to the right
fields, the buttons submit the forms, cookies and CSRF tokens survive real
navigation, a download is a download, and the pages are styled. So every test
here types into labelled fields and presses buttons against ``keyhouse serve``
(tests/e2e/harness.py), and reads mail from a real SMTP server (aiosmtpd).

Playwright lives in the package scope, not the session: its sync API keeps an
event loop on the main thread, which must be gone before other packages' tests
use the ORM. Only /usr/bin/chromium is used; no browser is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.helpers import REALM_NAME, Shot, WebServer
from tests.ci import missing
from tests.e2e.harness import REPO_ROOT, keyhouse_cli, start_server, stop
from tests.ports import free_port
from tests.smtp import Collector

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the network is closed: no update checks,
    "--disable-component-update",  # no component downloads,
    "--disable-sync",  # no account sync
]
VIEWPORT = {"width": 1000, "height": 700}
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
TIMEOUT_MS = 15_000


# --- Chromium and Playwright ----------------------------------------------------------


@pytest.fixture(scope="package", autouse=True)
def chromium_path() -> Path:
    """Debian's Chromium: required on CI (.ci/ensure-services.sh installs it), optional here.

    Autouse, so a missing browser skips before any server is started.
    """
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: run `make services` (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="package")
def playwright_driver(chromium_path: Path) -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright, chromium_path: Path) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(
        executable_path=str(chromium_path), args=CHROMIUM_ARGS, timeout=60_000
    )
    try:
        yield browser
    finally:
        browser.close()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body failed, for the failure screenshot."""
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/browser/<test name>/ (gitignored), emptied first."""
    path = ARTIFACTS / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path


@pytest.fixture
def page(browser: Browser, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context (no cookies) per test; a screenshot of where it was if it failed."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(CALL_FAILED, False):
            page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
        context.close()


@pytest.fixture
def shot(page: Page, artifacts: Path) -> Shot:
    """``shot("step")`` saves NN-step.png; ``docs="name.png"`` also copies it to docs/.

    The copy into docs/ happens only with KEYHOUSE_UPDATE_SCREENSHOTS=1 (run after a
    visual change), so that an ordinary `make test` leaves the work tree clean.
    """
    taken: list[Path] = []

    def take(name: str, docs: str | None = None, full_page: bool = False) -> Path:
        path = artifacts / f"{len(taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        taken.append(path)
        if docs and os.environ.get("KEYHOUSE_UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (DOCS_SCREENSHOTS / docs).write_bytes(path.read_bytes())
        return path

    return take


# --- Mail and the server --------------------------------------------------------------


class MailServer(NamedTuple):
    port: int
    collector: Collector


@pytest.fixture(scope="package")
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on loopback; the keyhouse server (another process) mails it."""
    collector = Collector()
    port = free_port()
    # A fixed greeting name: the default, socket.getfqdn(), may wait on DNS.
    controller = Controller(collector, hostname="127.0.0.1", port=port, server_hostname="smtp.test")
    controller.start()
    try:
        yield MailServer(port, collector)
    finally:
        controller.stop()


@contextmanager
def serving(
    tmp_path_factory: pytest.TempPathFactory,
    mail_server: MailServer,
    name: str,
    extra_config: str = "",
) -> Iterator[WebServer]:
    """A ``keyhouse serve`` configured by a TOML file to use our SMTP (plus ``extra_config``)."""
    data_dir = tmp_path_factory.mktemp(f"{name}-data")
    config = tmp_path_factory.mktemp(f"{name}-config") / "keyhouse.toml"
    config.write_text(
        "# tests/browser: plain SMTP to the in-test aiosmtpd server\n"
        + extra_config
        + 'EMAIL_HOST = "127.0.0.1"\n'
        f"EMAIL_PORT = {mail_server.port}\n"
        "EMAIL_USE_TLS = false\n"
        "EMAIL_TIMEOUT = 5\n"
        'DEFAULT_FROM_EMAIL = "keyhouse <noreply@keyhouse.test>"\n'
    )
    env = {"KEYHOUSE_CONFIG": str(config)}
    keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", REALM_NAME,
                 "--auth-methods", "email", env=env)  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{name}-server.log"
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, REALM_NAME, log, env=env)
    try:
        yield WebServer(base_url, data_dir, env, mail_server.collector)
    finally:
        stop(proc)


@pytest.fixture(scope="package")
def web_server(
    tmp_path_factory: pytest.TempPathFactory, mail_server: MailServer
) -> Iterator[WebServer]:
    """One ``keyhouse serve`` for the package."""
    with serving(tmp_path_factory, mail_server, "browser") as server:
        yield server
