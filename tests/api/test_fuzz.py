"""Property: whatever arrives, the answer is a well-formed Zulip JSON body and never a 5xx.

Requests go through ``keyhouse.wsgi.application`` as gunicorn delivers them
(raw bytes, Latin-1 environ strings), not through Django's test client, which
builds its own request object and so cannot see failures in building one.
Queries run under PostgreSQL's NUL rule (guards.py), so a NUL reaching the
database is a 500 here as it would be in production.

Generation is derandomized and bounded: the same 300 requests on every run.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from keyhouse.users.models import User
from tests.api.guards import postgres_text_rules
from tests.api.raw_wsgi import RawResponse, call_wsgi
from tests.conftest import PASSWORD

PUBLIC_PATHS = [
    "/api/v1/fetch_api_key",
    "/api/v1/server_settings",
    "/api/v1/users/me",
    "/api/v1/users/me/api_key/regenerate",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
EMAIL = "Hamlet@Example.com"  # the ``user`` fixture's
BOUNDARY = b"fuzz-boundary"

# Branches of st.one_of are drawn about equally often, so the strategies below mix
# well-formed input in with the malformed: malformed input stops a request early,
# and views, authentication and key regeneration must be reached too.

# Text as a WSGI server can deliver it in a header: any byte, seen as Latin-1.
latin1_text = st.binary(max_size=60).map(lambda b: b.decode("iso-8859-1"))
long_text = st.integers(min_value=4000, max_value=5000).map(lambda n: "x" * n)

# --- paths --------------------------------------------------------------------------

segments = st.one_of(
    st.sampled_from(["v1", "users", "me", "api_key", "regenerate", "fetch_api_key", "..", ""]),
    st.binary(max_size=12).map(lambda b: quote_from_bytes(b, safe="")),
)
random_api_paths = st.lists(segments, max_size=4).map(lambda s: "/api/" + "/".join(s))
# Mostly each endpoint with its own method, so that the view runs; else anything.
endpoints = st.one_of(
    st.sampled_from(
        [
            ("POST", "/api/v1/fetch_api_key"),
            ("GET", "/api/v1/server_settings"),
            ("HEAD", "/api/v1/server_settings"),
            ("GET", "/api/v1/users/me"),
            ("POST", "/api/v1/users/me/api_key/regenerate"),
        ]
    ),
    st.tuples(st.sampled_from(METHODS), st.sampled_from(PUBLIC_PATHS)),
    st.tuples(st.sampled_from(METHODS), random_api_paths),
)

# --- parameters ---------------------------------------------------------------------

clean_names = st.sampled_from(["username", "password", "client", "note"]).map(str.encode)
clean_values = st.one_of(
    st.sampled_from([EMAIL, EMAIL.lower(), PASSWORD, "", "a@b.c"]).map(str.encode),
    st.text(max_size=30).map(str.encode),
    long_text.map(str.encode),
)
# Sensible names and UTF-8 values, so that requests get past input validation...
clean_pairs = st.lists(st.tuples(clean_names, clean_values), max_size=5)
# A login attempt, right or wrong, with extras: reaches authentication.
login_pairs = st.builds(
    lambda username, password, extra: [(b"username", username), (b"password", password), *extra],
    st.sampled_from([EMAIL, EMAIL.lower(), "nobody@example.com"]).map(str.encode),
    st.sampled_from([PASSWORD, "wrong"]).map(str.encode),
    clean_pairs,
)
# ... and anything at all, NUL and invalid UTF-8 included.
any_pairs = st.lists(
    st.tuples(
        st.one_of(clean_names, st.binary(max_size=10)),
        st.one_of(clean_values, st.binary(max_size=30)),
    ),
    max_size=5,
)


def urlencode(items: list[tuple[bytes, bytes]], raw: bool = False) -> bytes:
    """Percent-encoded as a client should, or raw bytes as a broken one might."""
    if raw:
        return b"&".join(k + b"=" + v for k, v in items)
    return "&".join(
        f"{quote_from_bytes(k, safe='')}={quote_from_bytes(v, safe='')}" for k, v in items
    ).encode()


params = st.one_of(
    clean_pairs.map(urlencode),
    login_pairs.map(urlencode),
    st.builds(urlencode, any_pairs, st.booleans()),
)
form_data = st.one_of(params, params, st.binary(max_size=200))


def multipart(items: list[tuple[bytes, bytes]], base64_parts: bool, filename: bool) -> bytes:
    out = b""
    for name, value in items:
        out += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name + b'"'
        if filename:
            out += b'; filename="' + name + b'"'
        out += b"\r\n"
        if base64_parts:
            out += b"Content-Transfer-Encoding: base64\r\n"
            value = base64.b64encode(value)
        out += b"\r\n" + value + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


# --- bodies and their content types --------------------------------------------------

charsets = st.sampled_from(["utf-8", "UTF8", "latin-1", "utf-16", "hex", "rot13", "undefined"])
content_type_params = st.one_of(
    st.just(""),
    st.just(""),
    charsets.map(lambda c: f"; charset={c}"),
    st.sampled_from(["bogus", "undefined", "idna", "utf-8"]).map(lambda c: f"; name*={c}''x"),
    latin1_text.map(lambda t: "; " + t),
)


def with_params(media_type: str) -> st.SearchStrategy[str]:
    return content_type_params.map(lambda p: media_type + p)


bodies = st.one_of(
    st.tuples(with_params("application/x-www-form-urlencoded"), form_data),
    st.tuples(
        with_params("application/json"),
        st.one_of(
            st.dictionaries(st.text(max_size=10), st.text(max_size=20)).map(
                lambda d: json.dumps(d).encode()
            ),
            st.binary(max_size=100),
        ),
    ),
    st.tuples(
        st.one_of(
            st.just(f"multipart/form-data; boundary={BOUNDARY.decode()}"),
            with_params("multipart/form-data"),
        ),
        st.one_of(
            st.builds(multipart, login_pairs, st.booleans(), st.booleans()),
            st.builds(multipart, any_pairs, st.booleans(), st.booleans()),
            st.binary(max_size=200),
        ),
    ),
    st.tuples(with_params("text/plain"), st.binary(max_size=100)),
    st.tuples(st.none(), st.binary(max_size=100)),
    st.tuples(latin1_text, st.binary(max_size=100)),
)

# --- Authorization ------------------------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """An Authorization header to build once the user's current key is known."""

    kind: str  # "basic" (Basic + base64 of email:key), "basic-raw", or "raw"
    email: str = ""
    key: str = ""  # "<user>" means the user's real key
    raw: str = ""

    def header(self, user: User) -> str:
        if self.kind == "raw":
            return self.raw
        if self.kind == "basic-raw":
            return "Basic " + self.raw
        key = user.api_key if self.key == "<user>" else self.key
        token = f"{self.email}:{key}".encode("utf-8", "surrogatepass")
        return "Basic " + base64.b64encode(token).decode()


auths = st.one_of(
    st.none(),
    st.just(Auth(kind="basic", email=EMAIL, key="<user>")),
    st.builds(Auth, kind=st.just("raw"), raw=latin1_text),
    st.builds(Auth, kind=st.just("basic-raw"), raw=latin1_text),
    st.builds(
        Auth,
        kind=st.just("basic"),
        email=st.one_of(st.sampled_from([EMAIL, EMAIL.upper(), "x@y.z"]), st.text(max_size=30)),
        key=st.one_of(
            st.just("<user>"),
            st.text(alphabet="abcXYZ019", min_size=32, max_size=32),
            st.text(max_size=40),
        ),
    ),
)

# --- other headers clients and proxies send ----------------------------------------

extra_headers = st.fixed_dictionaries(
    {},
    optional={
        "Host": st.one_of(
            st.sampled_from(["testserver", "testserver:80", "[::1]", "www.testserver"]),
            st.sampled_from(["testserver", "localhost:9991"]),
            latin1_text,
        ),
        "User-Agent": st.one_of(st.just("ZulipInvalid/1.0"), latin1_text),
        "X-Forwarded-For": latin1_text,
    },
)

queries = st.one_of(st.just(b""), st.just(b""), params, st.binary(max_size=100))


# A request with a chance of going all the way: the endpoint's own method, a login
# or nothing as the body, and usually the user's real credentials.
plausible_endpoints = st.sampled_from(
    [
        ("POST", "/api/v1/fetch_api_key"),
        ("GET", "/api/v1/server_settings"),
        ("HEAD", "/api/v1/server_settings"),
        ("GET", "/api/v1/users/me"),
        ("POST", "/api/v1/users/me/api_key/regenerate"),
    ]
)
plausible_bodies = st.one_of(
    st.tuples(st.just("application/x-www-form-urlencoded"), login_pairs.map(urlencode)),
    st.tuples(
        st.just(f"multipart/form-data; boundary={BOUNDARY.decode()}"),
        st.builds(multipart, login_pairs, st.booleans(), st.booleans()),
    ),
    st.tuples(st.just("application/x-www-form-urlencoded"), params),
    st.tuples(st.none(), st.just(b"")),
)
plausible_auths = st.one_of(st.just(Auth(kind="basic", email=EMAIL, key="<user>")), auths)
plausible_queries = st.one_of(st.just(b""), clean_pairs.map(urlencode), params)

FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same requests on every run: CI failures reproduce
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_well_formed(method: str, response: RawResponse) -> None:
    """Below 500 and, with a body, Zulip's shape: result, msg, and code on errors."""
    assert response.status < 500, response.content
    if method == "HEAD":
        return
    assert response.headers.get("content-type") == "application/json", response
    assert response.content.endswith(b"\n"), response.content
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert body.get("result") in ("success", "error"), body
    assert isinstance(body.get("msg"), str), body
    assert (body["result"] == "success") == (response.status < 400), (response.status, body)
    if body["result"] == "error" and response.status != 405:
        assert isinstance(body.get("code"), str), body


def send_and_check(
    user: User,
    endpoint: tuple[str, str],
    query: bytes,
    body: tuple[str | None, bytes],
    auth: Auth | None,
    headers: dict[str, str],
) -> None:
    """One request through the real application, then the property."""
    user.refresh_from_db()  # an earlier example may have regenerated the key
    method, path = endpoint
    content_type, data = body
    all_headers = dict(headers)
    if auth is not None:
        all_headers["Authorization"] = auth.header(user)
    with postgres_text_rules():
        response = call_wsgi(
            method, path, query=query, body=data, content_type=content_type, headers=all_headers
        )
    event(f"HTTP {response.status}")  # pytest --hypothesis-show-statistics shows the mix
    assert_well_formed(method, response)


@pytest.fixture
def contained_state(settings: Settings) -> None:
    """Keep rate-limit counters in the test's database transaction, not a shared Redis."""
    settings.REDIS_URL = ""


@FUZZ_SETTINGS
@given(endpoint=endpoints, query=queries, body=bodies, auth=auths, headers=extra_headers)
# Requests that were 500s before keyhouse validated input: always tried, whatever is drawn.
@example(
    endpoint=("POST", "/api/v1/users/me/api_key/regenerate"),
    query=b"",
    body=("multipart/form-data", b"--x\r\n"),
    auth=Auth(kind="basic", email=EMAIL, key="<user>"),
    headers={},
)
@example(
    endpoint=("GET", "/api/v1/server_settings"),
    query=b"a=b",
    body=("text/plain; charset=hex", b"x"),
    auth=None,
    headers={},
)
@example(
    endpoint=("POST", "/api/v1/fetch_api_key"),
    query=b"",
    body=("text/plain; name*=undefined''x", b""),
    auth=None,
    headers={},
)
@example(
    endpoint=("GET", "/api/v1/users/me"),
    query=b"",
    body=(None, b""),
    auth=Auth(kind="basic", email=EMAIL + "\x00", key="<user>"),
    headers={},
)
def test_any_api_request_is_answered_in_zulip_format(
    user: User,
    contained_state: None,
    endpoint: tuple[str, str],
    query: bytes,
    body: tuple[str | None, bytes],
    auth: Auth | None,
    headers: dict[str, str],
) -> None:
    """Any method, path, query, body, content type and headers: no 5xx, a Zulip body."""
    send_and_check(user, endpoint, query, body, auth, headers)


@FUZZ_SETTINGS
@given(
    endpoint=plausible_endpoints,
    query=plausible_queries,
    body=plausible_bodies,
    auth=plausible_auths,
    headers=extra_headers,
)
@example(
    endpoint=("POST", "/api/v1/fetch_api_key"),
    query=b"",
    body=("application/x-www-form-urlencoded; charset=utf-16", b"username=a&password=b"),
    auth=None,
    headers={},
)
def test_plausible_requests_never_fail(
    user: User,
    contained_state: None,
    endpoint: tuple[str, str],
    query: bytes,
    body: tuple[str | None, bytes],
    auth: Auth | None,
    headers: dict[str, str],
) -> None:
    """The same property deeper in: logins, failed logins, rate limits, key regeneration."""
    send_and_check(user, endpoint, query, body, auth, headers)
