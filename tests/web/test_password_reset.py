"""Password reset by email, end to end over a real SMTP server (aiosmtpd).

A user asks for a link, the mail goes out through Django's SMTP backend, the
test reads the link from the received message, follows it, sets a password and
logs in through POST /api/v1/fetch_api_key with it. The request page must look
the same whatever the address, so nothing here may tell accounts apart.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import django
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.mail import wait_for_pending
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user, set_active
from keyhouse.users.models import User
from tests.smtp import Collector, smtp_server_fixture  # noqa: F401 - the fixture

EXTERNAL_HOST = "example.org"
HOST = f"forum.{EXTERNAL_HOST}"
CLIENT_IP = "203.0.113.7"  # not loopback, which is exempt from per-IP limits
OLD_PASSWORD = "Old-Horse-Battery-31"
NEW_PASSWORD = "Fresh-Staple-Orbit-58"
RESET_URL = "/accounts/password/reset/"
DONE_URL = "/accounts/password/reset/done/"


@pytest.fixture
def forum(db: None, settings: Settings) -> Realm:
    settings.EXTERNAL_HOST = EXTERNAL_HOST
    return Realm.objects.create(
        subdomain="forum", name="Avian Forum", authentication_methods=["email"]
    )


@pytest.fixture
def member(forum: Realm) -> User:
    return create_user(forum, "Wren@Example.com", "Jenny Wren", password=OLD_PASSWORD)


@pytest.fixture
def web() -> Client:
    return Client(HTTP_HOST=HOST, REMOTE_ADDR=CLIENT_IP)


def ask_reset(client: Client, email: str, **extra: str) -> tuple[int, str, str]:
    """POST the form; return the status, the redirect target and the page it leads to."""
    response = client.post(RESET_URL, {"email": email}, **extra)  # type: ignore[arg-type]
    location = response.get("Location", "")
    page = client.get(location, **extra).content.decode() if location else ""  # type: ignore[arg-type]
    return response.status_code, location, page


def follow_link(client: Client, url: str) -> str:
    """Open the mailed link: Django moves the token into the session and redirects."""
    parts = urlsplit(url)
    response = client.get(parts.path, HTTP_HOST=parts.netloc)
    assert response.status_code == 302, response.content
    assert "set-password" in response["Location"]
    return response["Location"]


def set_password(client: Client, form_url: str, password: str, again: str | None = None) -> object:
    return client.post(
        form_url, {"new_password1": password, "new_password2": password if again is None else again}
    )


def fetch_api_key(email: str, password: str) -> tuple[int, dict[str, object]]:
    response = Client(HTTP_HOST=HOST).post(
        "/api/v1/fetch_api_key", {"username": email, "password": password}
    )
    return response.status_code, json.loads(response.content)


def only_mail(smtp: Collector) -> str:
    messages = smtp.received()
    assert len(messages) == 1, [m.message["Subject"] for m in messages]
    (link,) = messages[0].links()
    return link


# --- the whole flow ------------------------------------------------------------------


def test_reset_over_real_smtp_then_log_in(
    web: Client, member: User, smtp_server: Collector, settings: Settings
) -> None:
    settings.DEFAULT_FROM_EMAIL = "keyhouse <noreply@example.org>"
    status, location, page = ask_reset(web, "wren@example.com")  # any case finds the account
    assert (status, location) == (302, DONE_URL)
    assert "Check your email" in page

    (mail,) = smtp_server.received()
    assert mail.rcpt_tos == ["Wren@Example.com"]
    assert mail.mail_from == "noreply@example.org"
    assert mail.message["Subject"] == "Reset your password for Avian Forum"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    (link,) = mail.links()
    assert link.startswith(f"http://{HOST}/accounts/password/reset/")  # the host asked

    form_url = follow_link(web, link)
    page = web.get(form_url).content.decode()
    assert "Set a new password" in page and "Wren@Example.com" in page
    response = set_password(web, form_url, NEW_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    assert "Your password has been set" in web.get(response["Location"]).content.decode()

    status, body = fetch_api_key("wren@example.com", NEW_PASSWORD)
    assert status == 200 and body["user_id"] == member.id
    assert fetch_api_key("wren@example.com", OLD_PASSWORD)[0] == 401


def test_passwordless_user_sets_a_first_password(
    web: Client, forum: Realm, smtp_server: Collector
) -> None:
    """Zulip's promise: an account that never had a password can get one this way."""
    user = create_user(forum, "sso@example.com", "Single Sign-On")
    assert not user.has_usable_password()
    ask_reset(web, "sso@example.com")
    link = only_mail(smtp_server)
    assert "no password yet" in smtp_server.received()[0].text
    response = set_password(web, follow_link(web, link), NEW_PASSWORD)
    assert response.status_code == 302
    status, body = fetch_api_key("sso@example.com", NEW_PASSWORD)
    assert status == 200 and body["email"] == "sso@example.com"


def test_link_works_once(web: Client, member: User, smtp_server: Collector) -> None:
    ask_reset(web, member.delivery_email)
    link = only_mail(smtp_server)
    assert set_password(web, follow_link(web, link), NEW_PASSWORD).status_code == 302  # type: ignore[attr-defined]
    again = Client(HTTP_HOST=HOST).get(urlsplit(link).path)
    assert again.status_code == 200
    assert "This link does not work" in again.content.decode()


def test_tampered_token_is_refused(web: Client, member: User, smtp_server: Collector) -> None:
    ask_reset(web, member.delivery_email)
    path = urlsplit(only_mail(smtp_server)).path
    uidb64, token = path.rstrip("/").split("/")[-2:]
    forged = path.replace(token, token[:-1] + ("a" if token[-1] != "a" else "b"))
    response = web.get(forged)
    assert response.status_code == 200 and "This link does not work" in response.content.decode()


def test_link_is_refused_on_another_realms_host(
    web: Client, member: User, smtp_server: Collector
) -> None:
    Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    ask_reset(web, member.delivery_email)
    path = urlsplit(only_mail(smtp_server)).path
    response = Client(HTTP_HOST=f"other.{EXTERNAL_HOST}").get(path)
    assert response.status_code == 200 and "This link does not work" in response.content.decode()


# --- the strength policy on the new password -------------------------------------------


def test_weak_password_is_a_form_error_and_the_link_still_works(
    web: Client, member: User, smtp_server: Collector
) -> None:
    ask_reset(web, member.delivery_email)
    form_url = follow_link(web, only_mail(smtp_server))
    response = set_password(web, form_url, "password")
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "The password is too weak" in response.content.decode()  # type: ignore[attr-defined]
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)
    assert set_password(web, form_url, NEW_PASSWORD).status_code == 302  # type: ignore[attr-defined]


def test_mismatched_confirmation_is_a_form_error(
    web: Client, member: User, smtp_server: Collector
) -> None:
    ask_reset(web, member.delivery_email)
    form_url = follow_link(web, only_mail(smtp_server))
    response = set_password(web, form_url, NEW_PASSWORD, again=NEW_PASSWORD + "x")
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "didn’t match" in response.content.decode()  # type: ignore[attr-defined]
    member.refresh_from_db()
    assert member.check_password(OLD_PASSWORD)


def test_reset_clears_the_login_rate_limit(
    web: Client, member: User, smtp_server: Collector, settings: Settings
) -> None:
    """change_password clears the failed-login history, as Zulip's do_change_password."""
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "authenticate_by_username": [(1800, 2)],
    }
    for _ in range(2):
        assert fetch_api_key(member.delivery_email, "wrong-password")[0] == 401
    assert fetch_api_key(member.delivery_email, OLD_PASSWORD)[0] == 429
    ask_reset(web, member.delivery_email)
    set_password(web, follow_link(web, only_mail(smtp_server)), NEW_PASSWORD)
    assert fetch_api_key(member.delivery_email, NEW_PASSWORD)[0] == 200


# --- no account enumeration, no mail for who may not reset ---------------------------------


def test_unknown_address_gets_the_same_answer_and_no_mail(
    web: Client, member: User, smtp_server: Collector
) -> None:
    known = ask_reset(web, member.delivery_email)
    unknown = ask_reset(web, "nobody@example.com")
    assert known == unknown
    assert [m.rcpt_tos for m in smtp_server.received()] == [[member.delivery_email]]


@pytest.mark.parametrize("case", ["inactive-user", "deactivated-realm", "email-auth-off", "bot"])
def test_accounts_that_may_not_reset_get_no_mail(
    web: Client, member: User, smtp_server: Collector, case: str
) -> None:
    baseline = ask_reset(web, "nobody@example.com")
    if case == "inactive-user":
        set_active(member, False)
    elif case == "deactivated-realm":
        member.realm.deactivated = True
        member.realm.save()
    elif case == "email-auth-off":
        member.realm.authentication_methods = ["ldap"]
        member.realm.save()
    else:
        member.is_bot = True
        member.save()
    assert ask_reset(web, member.delivery_email) == baseline
    assert smtp_server.received() == []


def test_account_in_another_realm_gets_no_mail(forum: Realm, smtp_server: Collector) -> None:
    """The host decides the realm: an address known elsewhere is unknown here."""
    other = Realm.objects.create(subdomain="other", name="Other", authentication_methods=["email"])
    create_user(other, "elsewhere@example.com", "Elsewhere", password=OLD_PASSWORD)
    status, location, _ = ask_reset(
        Client(HTTP_HOST=HOST, REMOTE_ADDR=CLIENT_IP), "elsewhere@example.com"
    )
    assert (status, location) == (302, DONE_URL)
    assert smtp_server.received() == []


def test_malformed_address_is_a_form_error(
    web: Client, forum: Realm, smtp_server: Collector
) -> None:
    response = web.post(RESET_URL, {"email": "not-an-address"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert smtp_server.received() == []


# --- rate limits: counted per address and per client IP, invisible to the client ----------


def test_defaults_are_zulips() -> None:
    from django.conf import settings

    assert settings.DEFAULT_RATE_LIMITING_RULES["password_reset_form_by_email"] == [
        (3600, 2),
        (86400, 5),
    ]
    assert settings.DEFAULT_RATE_LIMITING_RULES["sends_email_by_ip"] == [(86400, 5)]


def test_per_address_limit_sends_nothing_more_and_says_nothing(
    web: Client, member: User, smtp_server: Collector
) -> None:
    """Zulip's default (3600, 2): the third request within the hour sends no mail."""
    answers = [ask_reset(web, member.delivery_email) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert len(smtp_server.received()) == 2
    # The address is the key, from any IP and in any case.
    ask_reset(Client(HTTP_HOST=HOST, REMOTE_ADDR="198.51.100.9"), member.delivery_email.upper())
    assert len(smtp_server.received()) == 2


def test_per_ip_limit_spans_addresses(
    forum: Realm, smtp_server: Collector, settings: Settings
) -> None:
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "sends_email_by_ip": [(86400, 2)],
    }
    emails = [f"user{i}@example.com" for i in range(3)]
    for address in emails:
        create_user(forum, address, "Someone", password=OLD_PASSWORD)
    client = Client(HTTP_HOST=HOST, REMOTE_ADDR=CLIENT_IP)
    answers = [ask_reset(client, address) for address in emails]
    assert answers[0] == answers[1] == answers[2]
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received()) == emails[:2]  # any order
    # Another client is not affected.
    ask_reset(Client(HTTP_HOST=HOST, REMOTE_ADDR="198.51.100.9"), emails[2])
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received()) == emails


# --- where the link points -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("attacker.test", "http://example.org/"),  # names no realm: the root realm's link
        ("forum.example.org:6666", "http://forum.example.org/"),  # any port
        ("localhost:8000", "http://example.org/"),  # a loopback name on a production host
        ("127.0.0.1", "http://example.org/"),
    ],
)
def test_links_use_the_realms_configured_url_whatever_the_host_header(
    member: User, smtp_server: Collector, host: str, expected: str
) -> None:
    """Host-header poisoning: a link to the attacker's host would hand them the token."""
    root = Realm.objects.create(subdomain="", name="Root", authentication_methods=["email"])
    create_user(root, "victim@example.com", "Victim", password=OLD_PASSWORD)
    email = member.delivery_email if host.startswith("forum.") else "victim@example.com"
    status, location, _ = ask_reset(Client(HTTP_HOST=host, REMOTE_ADDR=CLIENT_IP), email)
    assert (status, location) == (302, DONE_URL)
    assert only_mail(smtp_server).startswith(expected + "accounts/password/reset/")
    [message] = smtp_server.received()
    assert host not in message.text  # not in the link, nor in "keyhouse at <host>"


def test_behind_a_tls_proxy_links_are_https(
    member: User, settings: Settings, smtp_server: Collector
) -> None:
    """Even for a plain-http request: a stranger's request must not downgrade the link."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    ask_reset(Client(HTTP_HOST=HOST, REMOTE_ADDR=CLIENT_IP), member.delivery_email)
    assert only_mail(smtp_server).startswith(f"https://{HOST}/accounts/password/reset/")


def test_without_external_host_an_unlisted_host_gets_no_mail(
    db: None, settings: Settings, smtp_server: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    """Development: the request's host only if ALLOWED_HOSTS names it ("*" names none)."""
    settings.EXTERNAL_HOST = ""
    settings.ALLOWED_HOSTS = ["*"]
    root = Realm.objects.create(subdomain="", name="Root", authentication_methods=["email"])
    create_user(root, "victim@example.com", "Victim", password=OLD_PASSWORD)
    attacker = Client(HTTP_HOST="attacker.test", REMOTE_ADDR=CLIENT_IP)
    status, location, _ = ask_reset(attacker, "victim@example.com")
    assert (status, location) == (302, DONE_URL)
    assert smtp_server.received() == []
    assert "not trusted for links" in caplog.text


def test_without_external_host_a_listed_host_is_used(
    db: None, settings: Settings, smtp_server: Collector
) -> None:
    settings.EXTERNAL_HOST = ""
    settings.ALLOWED_HOSTS = ["keyhouse.lan"]
    root = Realm.objects.create(subdomain="", name="Root", authentication_methods=["email"])
    create_user(root, "victim@example.com", "Victim", password=OLD_PASSWORD)
    ask_reset(Client(HTTP_HOST="keyhouse.lan:9991", REMOTE_ADDR=CLIENT_IP), "victim@example.com")
    assert only_mail(smtp_server).startswith("http://keyhouse.lan:9991/accounts/password/reset/")


def test_loopback_host_is_trusted_without_external_host(
    db: None, settings: Settings, smtp_server: Collector
) -> None:
    """The embedded default (`make serve`) has no EXTERNAL_HOST; a loopback link leaks nothing."""
    settings.EXTERNAL_HOST = ""
    root = Realm.objects.create(subdomain="", name="Demo", authentication_methods=["email"])
    create_user(root, "demo@example.com", "Demo", password=OLD_PASSWORD)
    ask_reset(Client(HTTP_HOST="127.0.0.1:9991", REMOTE_ADDR=CLIENT_IP), "demo@example.com")
    assert only_mail(smtp_server).startswith("http://127.0.0.1:9991/accounts/password/reset/")


# --- configuration -----------------------------------------------------------------------------


def test_default_backend_writes_mail_files_into_the_data_dir(
    web: Client, member: User, settings: Settings, tmp_path: Path
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "emails")
    ask_reset(web, member.delivery_email)
    wait_for_pending()
    (written,) = (tmp_path / "emails").iterdir()
    assert f"http://{HOST}/accounts/password/reset/" in written.read_text()


PROBE = (
    "import json, keyhouse.settings as s; print(json.dumps({k: getattr(s, k) for k in ("
    "'EMAIL_BACKEND', 'EMAIL_FILE_PATH', 'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER',"
    "'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', 'EMAIL_USE_SSL', 'EMAIL_TIMEOUT',"
    "'DEFAULT_FROM_EMAIL')}))"
)


def email_settings(tmp_path: Path, toml: str = "", **env: str) -> dict[str, object]:
    config = tmp_path / "keyhouse.toml"
    config.write_text(toml)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    clean.update(KEYHOUSE_DATA_DIR=str(tmp_path / "data"), KEYHOUSE_CONFIG=str(config), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def test_email_defaults_need_no_mail_server(tmp_path: Path) -> None:
    s = email_settings(tmp_path)
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert s["EMAIL_FILE_PATH"] == str((tmp_path / "data" / "emails").resolve())
    assert s["DEFAULT_FROM_EMAIL"] == "keyhouse <noreply@localhost>"


def test_email_host_from_the_environment_selects_smtp(tmp_path: Path) -> None:
    s = email_settings(
        tmp_path,
        'EXTERNAL_HOST = "avianforum.ca"\nEMAIL_HOST_USER = "keyhouse"\n',
        KEYHOUSE_EMAIL_HOST="smtp.avianforum.ca",
        KEYHOUSE_EMAIL_HOST_PASSWORD="s3cret",
    )
    assert s["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (s["EMAIL_HOST"], s["EMAIL_PORT"], s["EMAIL_TIMEOUT"]) == ("smtp.avianforum.ca", 587, 10)
    assert (s["EMAIL_HOST_USER"], s["EMAIL_HOST_PASSWORD"]) == ("keyhouse", "s3cret")
    assert (s["EMAIL_USE_TLS"], s["EMAIL_USE_SSL"]) == (True, False)
    assert s["DEFAULT_FROM_EMAIL"] == "keyhouse <noreply@avianforum.ca>"


def test_implicit_tls_turns_starttls_off(tmp_path: Path) -> None:
    s = email_settings(
        tmp_path, 'EMAIL_HOST = "smtp.example"\nEMAIL_PORT = 465\nEMAIL_USE_SSL = true\n'
    )
    assert (s["EMAIL_PORT"], s["EMAIL_USE_SSL"], s["EMAIL_USE_TLS"]) == (465, True, False)


# --- the same work for every address (timing) -----------------------------------------------

SRC = Path(__file__).resolve().parents[2] / "src" / "keyhouse"
# Besides keyhouse itself, the steps whose presence would tell the cases apart:
# the token, the URL, the mail connection, template rendering and mail sending.
WATCHED = (str(SRC), *(str(Path(django.__file__).parent / p) for p in (
    "contrib/auth/tokens.py", "urls", "core/mail", "template", "utils/http.py")))  # fmt: skip


def request_thread_steps(client: Client, email: str) -> Counter[str]:
    """Every watched function the request thread calls while the form is submitted.

    A profiler hook is per thread: what the mail thread does is not recorded.
    """
    steps: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(WATCHED):
            steps[f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"] += 1

    sys.setprofile(profile)
    try:
        response = client.post(RESET_URL, {"email": email})
    finally:
        sys.setprofile(None)
    wait_for_pending()
    assert response.status_code == 302
    return steps


def test_the_request_thread_does_the_same_steps_for_real_and_unknown_accounts(
    web: Client, member: User, settings: Settings, smtp_server: Collector
) -> None:
    settings.EMAIL_IN_BACKGROUND = True  # as in production: the mail thread renders and sends
    settings.RATE_LIMITING = False  # the limits count both the same; this test asks many times
    for email in (member.delivery_email, "nobody@example.com"):  # warm caches and templates
        request_thread_steps(web, email)
    real = request_thread_steps(web, member.delivery_email)
    unknown = request_thread_steps(web, "nobody@example.com")
    assert "tokens.py:make_token" in real
    assert "mail.py:send_in_background" in real
    assert real == unknown, (real - unknown, unknown - real)
    assert len(smtp_server.received()) == 2  # and only the real account got mail


def test_bench_real_and_unknown_accounts_take_the_same_time(
    web: Client, member: User, settings: Settings
) -> None:
    """Printed figures; the check is generous (the step comparison above is the proof).

    Django's in-memory mail backend: an SMTP server in this process would take
    CPU from the next request while it parses the mail, which a real one does not.
    """
    settings.EMAIL_IN_BACKGROUND = True
    settings.RATE_LIMITING = False
    timings: dict[str, list[float]] = {"real": [], "unknown": []}
    emails = {"real": member.delivery_email, "unknown": "nobody@example.com"}
    for _ in range(100):
        for case, email in emails.items():
            started = time.perf_counter()
            assert web.post(RESET_URL, {"email": email}).status_code == 302
            timings[case].append(time.perf_counter() - started)
            wait_for_pending()  # the next request does not share the CPU with this mail
    medians = {case: statistics.median(t) * 1000 for case, t in timings.items()}
    print(f"password reset request, median of 100: {medians}")
    assert 0.5 < medians["real"] / medians["unknown"] < 2.0


def test_per_ip_limit_spans_an_ipv6_64(
    forum: Realm, smtp_server: Collector, settings: Settings
) -> None:
    """Every address of one /64 is one client: new addresses there buy no mail."""
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "sends_email_by_ip": [(86400, 2)],
    }
    emails = [f"user{i}@example.com" for i in range(4)]
    for address in emails:
        create_user(forum, address, "Someone", password=OLD_PASSWORD)
    for n, address in enumerate(emails[:3], start=1):
        ask_reset(Client(HTTP_HOST=HOST, REMOTE_ADDR=f"2001:db8:5:6::{n}"), address)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received()) == emails[:2]
    ask_reset(Client(HTTP_HOST=HOST, REMOTE_ADDR="2001:db8:5:7::1"), emails[3])  # another /64
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received()) == emails[:2] + emails[3:]


def test_per_address_limit_is_one_budget_however_the_address_is_spelled(
    forum: Realm, smtp_server: Collector, settings: Settings
) -> None:
    """``İ`` lower-cases to ``i`` in PostgreSQL but ``i̇`` in Python: each spelling used to
    buy a fresh budget of reset mails to the same inbox."""
    settings.RATE_LIMITING_RULES = {
        **settings.RATE_LIMITING_RULES,
        "password_reset_form_by_email": [(3600, 2)],
    }
    create_user(forum, "alice@example.com", "Alice", password=OLD_PASSWORD)
    for spelling in ("alice@example.com", "alİce@example.com", "ALICE@example.com",
                     "ａｌｉｃｅ@example.com"):  # fmt: skip
        ask_reset(Client(HTTP_HOST=HOST), spelling)
    assert len(smtp_server.received()) <= 2
