"""A real SMTP server for tests: aiosmtpd on a free loopback port, collecting messages.

The server runs in a thread of the test process but speaks SMTP over TCP, so the
code under test goes through Django's real SMTP backend (smtplib), as in
production.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_django.fixtures import Settings

from keyhouse.mail import wait_for_pending
from tests.ports import free_port

# aiosmtpd logs every connection at INFO from its own thread, sometimes after
# pytest has closed the stream it captured: "--- Logging error ---" noise.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    # The client's (host, port): mails over one SMTP connection share it.
    peer: tuple[str, int] | None = None

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    def links(self) -> list[str]:
        return re.findall(r"https?://\S+", self.text)


class Collector:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            peer = tuple(session.peer) if session.peer else None
            self._messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, peer)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"

    def received(self) -> list[Received]:
        """Every message so far, after the app's queued mails have been handed over.

        A method, not a property: aiosmtpd inspects the handler's attributes.
        """
        wait_for_pending()
        with self._lock:
            return list(self._messages)


@pytest.fixture(name="smtp_server")
def smtp_server_fixture(settings: Settings) -> Iterator[Collector]:
    """Start the server and point Django's SMTP backend at it (plain SMTP, no auth)."""
    collector = Collector()
    port = free_port()
    # A fixed greeting name: the default, socket.getfqdn(), may wait on DNS.
    controller = Controller(collector, hostname="127.0.0.1", port=port, server_hostname="smtp.test")
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield collector
    finally:
        wait_for_pending()  # no mail of this test may reach the next test's server
        controller.stop()
