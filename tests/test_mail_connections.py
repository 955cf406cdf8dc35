"""Mail worker threads keep their connection open between mails (keyhouse.mail).

Over a real SMTP server (aiosmtpd): a burst of mails shares one SMTP connection,
as in Zulip's email worker; a connection the server closed, one idle too long and
one made from settings that changed since are all replaced, and no mail is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage
from pytest_django.fixtures import Settings

from keyhouse import mail
from tests.ports import free_port
from tests.smtp import Collector, smtp_server_fixture  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def one_mail_thread(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Background sending on a single fresh thread, so "the thread's connection" is one."""
    settings.EMAIL_IN_BACKGROUND = True
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-mail")
    monkeypatch.setattr(mail, "_pool", pool)
    yield
    mail.wait_for_pending()
    # Close what the thread kept, on that thread, before it goes.
    pool.submit(lambda: mail._kept.connection and mail._close_quietly(mail._kept.connection))
    pool.shutdown(wait=True)


def send(to: str, subject: str = "Hello") -> None:
    mail.send_in_background(lambda: EmailMessage(subject, "Body\n", None, [to]), "a test mail")
    mail.wait_for_pending()


def test_mails_in_a_burst_share_one_smtp_connection(smtp_server: Collector) -> None:
    for n in range(3):
        send(f"user{n}@example.com")
    received = smtp_server.received()
    assert [m.rcpt_tos for m in received] == [[f"user{n}@example.com"] for n in range(3)]
    assert received[0].peer is not None
    assert {m.peer for m in received} == {received[0].peer}


def test_a_connection_idle_too_long_is_replaced(
    smtp_server: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    send("first@example.com")
    monkeypatch.setattr(mail, "REUSE_IDLE_SECONDS", 0.0)
    send("second@example.com")
    first, second = smtp_server.received()
    assert first.peer != second.peer


def test_changed_settings_get_a_new_connection(smtp_server: Collector, settings: Settings) -> None:
    send("first@example.com")
    settings.EMAIL_TIMEOUT = 7  # any mail setting: the kept connection no longer matches
    send("second@example.com")
    first, second = smtp_server.received()
    assert first.peer != second.peer


def start_smtp(collector: Collector, port: int) -> Controller:
    controller = Controller(collector, hostname="127.0.0.1", port=port, server_hostname="smtp.test")
    controller.start()
    return controller


def test_a_connection_the_server_closed_is_reopened_and_the_mail_sent(settings: Settings) -> None:
    before, after = Collector(), Collector()
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    server = start_smtp(before, port)
    try:
        send("first@example.com")
    finally:
        server.stop()  # closes the connection the mail thread kept
    server = start_smtp(after, port)  # the same address, as after a restart
    try:
        send("second@example.com")
        assert [m.rcpt_tos for m in before.received()] == [["first@example.com"]]
        assert [m.rcpt_tos for m in after.received()] == [["second@example.com"]]
    finally:
        server.stop()


def test_a_failure_on_a_new_connection_is_logged_not_retried(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    with caplog.at_level("ERROR", logger="keyhouse.mail"):
        send("lost@example.com")
    assert [r.getMessage() for r in caplog.records] == ["Could not send a test mail"]
    assert mail._kept.connection is None or mail._kept.key != mail._settings_key()


def test_file_backend_writes_a_burst_into_one_file(settings: Settings, tmp_path: Path) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    for n in range(3):
        send(f"user{n}@example.com", subject=f"Mail {n}")
    (only,) = tmp_path.iterdir()
    text = only.read_text()  # each mail is flushed as it is written
    assert [f"Subject: Mail {n}" in text for n in range(3)] == [True, True, True]
