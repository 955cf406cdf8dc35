"""Bad input never hurts: a precise Zulip-format 4xx, and nothing written.

Every rejected request below carries otherwise *correct* credentials, so that if
a check were missing the login or key regeneration would go through, write its
audit entry or new key, and the "nothing written" guard would fail. Queries run
under PostgreSQL's rule that text cannot contain NUL (see guards.py): a NUL that
reached the database would be a 500 in production.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.api.input_validation import KeyhouseWSGIHandler
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import User
from tests.api.guards import nothing_written, postgres_text_rules
from tests.api.helpers import WWW_AUTHENTICATE, json_body
from tests.api.raw_wsgi import call_wsgi
from tests.conftest import PASSWORD, basic_auth

FETCH = "/api/v1/fetch_api_key"
SERVER_SETTINGS = "/api/v1/server_settings"
ME = "/api/v1/users/me"
REGENERATE = "/api/v1/users/me/api_key/regenerate"
FORM = "application/x-www-form-urlencoded"
BOUNDARY = "keyhouse-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
JSON = "application/json"

BAD_HEADER = "Invalid authorization header for basic auth"
NOT_BASIC = "This endpoint requires HTTP basic authentication."

Send = Callable[[Client, User], HttpResponse]


def error(msg: str, code: str = "BAD_REQUEST") -> dict[str, Any]:
    return {"result": "error", "msg": msg, "code": code}


NOT_UTF8 = error("Request is not valid UTF-8")
BAD_MULTIPART = error("Malformed multipart/form-data body")


def unauthorized(msg: str) -> dict[str, Any]:
    return error(msg, "UNAUTHORIZED")


def credentials(user: User, password: str = PASSWORD) -> bytes:
    """The user's correct login, URL-encoded: what a check must stop despite it being right."""
    return f"username={quote(user.delivery_email)}&password={quote(password)}".encode()


def multipart(*fields: tuple[str, bytes]) -> bytes:
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (BOUNDARY.encode(), name.encode(), value)
        for name, value in fields
    ]
    return b"".join(parts) + b"--%s--\r\n" % BOUNDARY.encode()


def login_fields(user: User) -> list[tuple[str, bytes]]:
    return [("username", user.delivery_email.encode()), ("password", PASSWORD.encode())]


def raw_basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


def post(
    body: Callable[[User], bytes],
    *,
    path: str = FETCH,
    content_type: str = FORM,
    query: str | None = None,
    auth: bool = False,
) -> Send:
    """A POST of raw bytes; ``query`` is the raw query string as a WSGI server passes it."""

    def send(client: Client, user: User) -> HttpResponse:
        extra: dict[str, str] = {}
        if query is not None:
            extra["QUERY_STRING"] = query
        if auth:
            extra.update(basic_auth(user.delivery_email, user.api_key))
        return client.generic("POST", path, data=body(user), content_type=content_type, **extra)

    return send


def get(path: str, *, query: str | None = None, auth: bool = True) -> Send:
    def send(client: Client, user: User) -> HttpResponse:
        extra = basic_auth(user.delivery_email, user.api_key) if auth else {}
        if query is not None:
            extra["QUERY_STRING"] = query
        return client.generic("GET", path, **extra)

    return send


@pytest.fixture(autouse=True)
def postgres_rules() -> Iterator[None]:
    with postgres_text_rules():
        yield


@dataclass(frozen=True)
class Rejected:
    send: Send
    status: int
    body: dict[str, Any]


REJECTED: dict[str, Rejected] = {
    # --- repeated parameters ----------------------------------------------------------
    "username twice in the body": Rejected(
        post(lambda u: credentials(u) + f"&username={quote(u.delivery_email)}".encode()),
        400,
        error("Parameter 'username' was sent more than once"),
    ),
    "password twice in the body": Rejected(
        post(lambda u: b"password=wrong&" + credentials(u)),
        400,
        error("Parameter 'password' was sent more than once"),
    ),
    "username twice in the query": Rejected(
        post(lambda u: f"password={PASSWORD}".encode(), query="username=a%40b.c&username=a%40b.c"),
        400,
        error("Parameter 'username' was sent more than once"),
    ),
    "username twice in a multipart body": Rejected(
        post(
            lambda u: multipart(*login_fields(u), ("username", u.delivery_email.encode())),
            content_type=MULTIPART,
        ),
        400,
        error("Parameter 'username' was sent more than once"),
    ),
    # --- invalid UTF-8 ----------------------------------------------------------------
    "raw invalid byte in the body": Rejected(
        post(lambda u: credentials(u) + b"&note=\xff"), 400, NOT_UTF8
    ),
    "percent-encoded invalid byte as username": Rejected(
        post(lambda u: f"username=%ff&password={PASSWORD}".encode()), 400, NOT_UTF8
    ),
    "percent-encoded bad continuation byte": Rejected(
        post(lambda u: credentials(u) + b"&note=%C3%28"), 400, NOT_UTF8
    ),
    "percent-encoded surrogate": Rejected(
        post(lambda u: credentials(u) + b"&note=%ED%A0%80"), 400, NOT_UTF8
    ),
    "overlong encoding": Rejected(post(lambda u: credentials(u) + b"&note=%C0%AF"), 400, NOT_UTF8),
    "raw lead byte completed by a percent-escape": Rejected(
        post(lambda u: credentials(u) + b"&note=\xc3%a9"), 400, NOT_UTF8
    ),
    "Latin-1 body declared as Latin-1": Rejected(
        post(lambda u: credentials(u) + b"&note=caf\xe9", content_type=FORM + "; charset=latin-1"),
        400,
        NOT_UTF8,
    ),
    "percent-encoded invalid byte in the query": Rejected(
        post(credentials, query="note=%ff"), 400, NOT_UTF8
    ),
    "raw invalid byte in the query": Rejected(post(credentials, query="\xff"), 400, NOT_UTF8),
    "invalid byte in a multipart field": Rejected(
        post(lambda u: multipart(*login_fields(u), ("note", b"\xff")), content_type=MULTIPART),
        400,
        NOT_UTF8,
    ),
    # --- NUL --------------------------------------------------------------------------
    "percent-encoded NUL in username": Rejected(
        post(lambda u: credentials(u).replace(b"&", b"%00&", 1)),
        400,
        error("username contains NULL (0x00) characters"),
    ),
    "percent-encoded NUL in password": Rejected(
        post(lambda u: credentials(u) + b"%00"),
        400,
        error("password contains NULL (0x00) characters"),
    ),
    "raw NUL byte in password": Rejected(
        post(lambda u: credentials(u) + b"\x00"),
        400,
        error("password contains NULL (0x00) characters"),
    ),
    "NUL in a multipart password": Rejected(
        post(
            lambda u: multipart(("username", u.delivery_email.encode()), ("password", b"a\x00b")),
            content_type=MULTIPART,
        ),
        400,
        error("password contains NULL (0x00) characters"),
    ),
    # --- length -----------------------------------------------------------------------
    "10 000-character username": Rejected(
        post(lambda u: b"username=" + b"a" * 9988 + b"%40example.com&password=x"),
        400,
        error("username is too long (limit: 4096 characters)"),
    ),
    "10 000-character password": Rejected(
        post(lambda u: credentials(u, PASSWORD + "x" * (10_000 - len(PASSWORD)))),
        400,
        error("password is too long (limit: 4096 characters)"),
    ),
    "body over the size limit": Rejected(
        post(lambda u: credentials(u) + b"&pad=" + b"x" * 70_000),
        413,
        error("Request body too large"),
    ),
    "multipart body over the size limit": Rejected(
        post(lambda u: multipart(*login_fields(u), ("pad", b"x" * 70_000)), content_type=MULTIPART),
        413,
        error("Request body too large"),
    ),
    "too many fields": Rejected(
        post(lambda u: credentials(u) + b"".join(b"&f%d=1" % n for n in range(100))),
        400,
        error("Bad request"),
    ),
    # --- unparseable bodies -----------------------------------------------------------
    "multipart without a boundary": Rejected(
        post(lambda u: multipart(*login_fields(u)), content_type="multipart/form-data"),
        400,
        BAD_MULTIPART,
    ),
    "multipart with a boundary that is not ASCII": Rejected(
        post(
            lambda u: multipart(*login_fields(u)), content_type="multipart/form-data; boundary=\xe9"
        ),
        400,
        BAD_MULTIPART,
    ),
    # gunicorn refuses this itself; other WSGI servers may pass it on.
    "Content-Length that is not a number": Rejected(
        lambda c, u: c.generic(
            "POST", FETCH, data=credentials(u), content_type=FORM, CONTENT_LENGTH="12abc"
        ),
        400,
        error("Malformed Content-Length header"),
    ),
    # Zulip reads no JSON bodies: the parameters are simply missing.
    "JSON body": Rejected(
        post(
            lambda u: (
                b'{"username": "%s", "password": "%s"}'
                % (u.delivery_email.encode(), PASSWORD.encode())
            ),
            content_type=JSON,
        ),
        400,
        {
            "result": "error",
            "msg": "Missing 'username' argument",
            "var_name": "username",
            "code": "REQUEST_VARIABLE_MISSING",
        },
    ),
    # --- authenticated endpoints with correct credentials -------------------------------
    "regenerate with invalid UTF-8 in the query": Rejected(
        post(lambda u: b"", path=REGENERATE, query="x=%ff", auth=True), 400, NOT_UTF8
    ),
    "regenerate with an invalid UTF-8 form body": Rejected(
        post(lambda u: b"x=%ff", path=REGENERATE, auth=True), 400, NOT_UTF8
    ),
    "regenerate with a malformed multipart body": Rejected(
        post(lambda u: b"--x\r\n", path=REGENERATE, content_type="multipart/form-data", auth=True),
        400,
        BAD_MULTIPART,
    ),
    "regenerate with a body over the size limit": Rejected(
        post(lambda u: b"x=" + b"y" * 70_000, path=REGENERATE, auth=True),
        413,
        error("Request body too large"),
    ),
    "users/me with invalid UTF-8 in the query": Rejected(get(ME, query="x=%ff"), 400, NOT_UTF8),
    # No view reads a GET body, but the size limit is for every body.
    "users/me with a body over the size limit": Rejected(
        lambda c, u: c.generic(
            "GET",
            ME,
            data=b"x" * 70_000,
            content_type="text/plain",
            **basic_auth(u.delivery_email, u.api_key),
        ),
        413,
        error("Request body too large"),
    ),
}


@pytest.mark.parametrize("case", REJECTED.values(), ids=REJECTED.keys())
def test_bad_input_is_refused_and_nothing_written(
    client: Client, user: User, case: Rejected
) -> None:
    """The exact error, JSON with the newline, and not one row or credential changed."""
    with nothing_written(user):
        response = case.send(client, user)
    assert json_body(response, case.status) == case.body


# --- malformed Authorization headers (reference §5.2) ---------------------------------


def too_long_email(user: User) -> str:
    return raw_basic(b"a" * 10_000 + b"@example.com:" + user.api_key.encode())


HEADERS: dict[str, tuple[Callable[[User], str], int, dict[str, Any]]] = {
    "empty": (lambda u: "", 401, unauthorized(BAD_HEADER)),
    "scheme only": (lambda u: "Basic", 401, unauthorized(BAD_HEADER)),
    "three tokens": (lambda u: "Basic abc def", 401, unauthorized(BAD_HEADER)),
    "non-ASCII bytes": (lambda u: "Basic \xff\xfe\xfd", 401, unauthorized(BAD_HEADER)),
    "non-ASCII scheme": (lambda u: "B\xe4sic abc", 400, error(NOT_BASIC)),
    "NUL instead of the space": (
        lambda u: raw_basic(f"{u.delivery_email}:{u.api_key}".encode()).replace(" ", "\x00"),
        401,
        unauthorized(BAD_HEADER),
    ),
    "10 000 characters": (lambda u: "Basic " + "A" * 10_000, 401, unauthorized(BAD_HEADER)),
    "credentials not UTF-8": (
        lambda u: raw_basic(b"\xff\xfe:" + u.api_key.encode()),
        401,
        unauthorized(BAD_HEADER),
    ),
    "two colons": (
        lambda u: raw_basic(f"{u.delivery_email}:{u.api_key}:x".encode()),
        401,
        unauthorized(BAD_HEADER),
    ),
    "other scheme": (lambda u: "Bearer abc", 400, error(NOT_BASIC)),
    "malformed key": (
        lambda u: raw_basic(f"{u.delivery_email}:not-a-key".encode()),
        401,
        unauthorized("Malformed API key"),
    ),
    # A well-formed key makes these reach the lookup by email.
    "NUL in the email": (
        lambda u: raw_basic(f"{u.delivery_email}\x00:{u.api_key}".encode()),
        401,
        unauthorized("Invalid API key"),
    ),
    "10 000-character email": (too_long_email, 401, unauthorized("Invalid API key")),
}


@pytest.mark.parametrize("path", [ME, REGENERATE])
@pytest.mark.parametrize("name", HEADERS)
def test_malformed_authorization_header(client: Client, user: User, path: str, name: str) -> None:
    """Zulip's 400/401 for each, never a 5xx, and regeneration changes no key."""
    header, status, expected = HEADERS[name]
    method = "GET" if path == ME else "POST"
    with nothing_written(user):
        response = client.generic(method, path, HTTP_AUTHORIZATION=header(user))
    assert json_body(response, status) == expected
    if status == 401:
        assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


# --- invalid UTF-8 on every /api/ path ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", SERVER_SETTINGS),
        ("GET", ME),
        ("POST", REGENERATE),
        ("POST", FETCH),
        ("GET", "/api/v1/no-such-endpoint"),
    ],
)
@pytest.mark.parametrize("query", ["x=%ff", "x=\xff", "%ff=x"])
def test_invalid_utf8_query_refused_on_every_api_path(
    client: Client, user: User, method: str, path: str, query: str
) -> None:
    """Checked before routing and authentication: one rule for every /api/ path."""
    response = client.generic(
        method, path, QUERY_STRING=query, **basic_auth(user.delivery_email, user.api_key)
    )
    assert json_body(response, 400) == NOT_UTF8


# --- what must still be accepted --------------------------------------------------------

UNICODE_PASSWORD = "Pässwörd-Ünïcode-77"


@pytest.fixture
def unicode_user(realm: Realm) -> User:
    return create_user(realm, "ophelia@example.com", "Ophelia", password=UNICODE_PASSWORD)


@pytest.mark.parametrize("encode", [quote, lambda s: s], ids=["percent-encoded", "raw UTF-8"])
def test_utf8_password_accepted(
    client: Client, unicode_user: User, encode: Callable[[str], str]
) -> None:
    """The UTF-8 checks must not catch UTF-8: raw or percent-encoded, it logs in."""
    body = f"username={quote(unicode_user.delivery_email)}&password={encode(UNICODE_PASSWORD)}"
    response = client.generic("POST", FETCH, data=body.encode(), content_type=FORM)
    assert json_body(response, 200)["api_key"] == unicode_user.api_key


def test_declared_charset_ignored_for_ascii_body(client: Client, user: User) -> None:
    """Everything is read as UTF-8; a Latin-1 label on ASCII data changes nothing."""
    response = client.generic(
        "POST", FETCH, data=credentials(user), content_type=FORM + "; charset=latin-1"
    )
    assert json_body(response, 200)["api_key"] == user.api_key


def test_genuine_replacement_character_in_multipart_accepted(client: Client, user: User) -> None:
    """U+FFFD that the client really sent is not mistaken for a decoding failure."""
    body = multipart(*login_fields(user), ("note", "\ufffd".encode()))
    response = client.generic("POST", FETCH, data=body, content_type=MULTIPART)
    assert json_body(response, 200)["ignored_parameters_unsupported"] == ["note"]


def test_only_parameters_a_view_reads_are_checked(client: Client, user: User) -> None:
    """Repeated, NUL-bearing or long parameters nobody reads are only reported as ignored."""
    extra = b"&dup=1&dup=2&nul=%00&long=" + b"x" * 10_000
    response = client.generic("POST", FETCH, data=credentials(user) + extra, content_type=FORM)
    assert json_body(response, 200)["ignored_parameters_unsupported"] == ["dup", "long", "nul"]


@pytest.mark.parametrize(("extra", "status"), [(0, 401), (1, 400)])
def test_password_length_limit_is_inclusive(
    client: Client, user: User, extra: int, status: int
) -> None:
    """Exactly 4096 characters still reaches authentication (and fails); one more does not."""
    password = "x" * (4096 + extra)
    response = client.post(FETCH, {"username": user.delivery_email, "password": password})
    body = json_body(response, status)
    if status == 400:
        assert body == error("password is too long (limit: 4096 characters)")
    else:
        assert body["code"] == "AUTHENTICATION_FAILED"


def test_parameter_limit_read_from_settings(client: Client, user: User, settings: Settings) -> None:
    """MAX_PARAM_CHARS is read per request, so operators can tune it."""
    settings.MAX_PARAM_CHARS = len(PASSWORD) - 1
    response = client.post(FETCH, {"username": "a@b.c", "password": PASSWORD})
    limit = len(PASSWORD) - 1
    assert json_body(response, 400) == error(f"password is too long (limit: {limit} characters)")


# --- headers that would crash Django's own request class --------------------------------


def test_production_application_uses_the_safe_request() -> None:
    """The raw tests below only prove something if gunicorn is served this handler."""
    from keyhouse.wsgi import application

    assert isinstance(application, KeyhouseWSGIHandler)


@pytest.mark.parametrize("charset", ["hex", "rot13", "base64", "undefined", "idna", "utf-16"])
def test_content_type_charset_is_ignored(user: User, charset: str) -> None:
    """Django decodes the query string with this codec while *building* the request.

    A codec that cannot decode text raises there, before any middleware: a bare 500
    from the WSGI server. keyhouse reads UTF-8 whatever the label says.
    """
    with nothing_written(user):
        response = call_wsgi(
            "GET",
            SERVER_SETTINGS,
            query=b"client=test",
            content_type=f"text/plain; charset={charset}",
        )
    assert response.status == 200, response.content
    assert response.json()["result"] == "success"

    login = call_wsgi(
        "POST", FETCH, body=credentials(user), content_type=f"{FORM}; charset={charset}"
    )
    assert login.status == 200, login.content
    assert login.json()["api_key"] == user.api_key


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain; name*=bogus''x",  # unknown RFC 2231 charset: ValueError
        "text/plain; name*=undefined''x",  # UnicodeError
        "text/plain; name*=idna''x",  # UnicodeError: idna has no "replace" handler
        "text/plain; name*=punycode''\xff",  # UnicodeDecodeError
        f"{FORM}; charset*=bogus''utf-8",
    ],
)
@pytest.mark.parametrize("path", [SERVER_SETTINGS, FETCH])
def test_unparseable_content_type_is_400(user: User, content_type: str, path: str) -> None:
    """Refused as JSON, where Django's request class would raise before any middleware."""
    with nothing_written(user):
        response = call_wsgi("POST", path, body=credentials(user), content_type=content_type)
    assert response.status == 400, response.content
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error("Malformed Content-Type header")
