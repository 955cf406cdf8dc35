"""Secrets never leak: after a whole session, no log line, error body or file holds one.

"A whole session" is every flow that puts a secret in a URL or a form, run
against a real server, in both log formats: fetch_api_key with the password in
the query string, the password-reset link (and its mistyped, CSRF-refused and
used-up variants), the desktop app's login token, the mobile and desktop
one-time pads, and a request line gunicorn itself refuses (its error log).
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.e2e.harness import ARTIFACTS, SERVED_BY, keyhouse_cli, start_server, stop

EMAIL = "canary@example.com"
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_DESKTOP_DATA = re.compile(r'id="desktop-data" type="text" value="([0-9a-f]+)"')
_RESET_URL = re.compile(r"https?://\S+/accounts/password/reset/([^/\s]+)/([^/\s]+)/")


def _csrf(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def _wait_for_reset_link(data_dir: Path) -> re.Match[str]:
    """The link in the mail the server wrote to DATA_DIR/emails (sent off the request thread)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for mail in sorted((data_dir / "emails").glob("*")):
            match = _RESET_URL.search(mail.read_text(errors="replace"))
            if match:
                return match
        time.sleep(0.1)
    pytest.fail("no password reset mail within 15 s")


def _raw_request_line(base_url: str, line: str) -> None:
    """Send a request line the HTTP server refuses itself (a DEL in it).

    gunicorn logs the refused target; granian logs nothing.
    """
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    assert host and port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(line.encode() + b"\r\nHost: " + host.encode() + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


def _app_flows(client: httpx.Client, otps: dict[str, str], password: str) -> list[str]:
    """Mobile and desktop sign-ins; the desktop token redeemed, twice. Their secrets."""
    found: list[str] = []
    for flow in ("mobile_flow_otp", "desktop_flow_otp"):
        page = client.get("/login/", params={flow: otps[flow]})
        data = {"csrfmiddlewaretoken": _csrf(page), "username": EMAIL, "password": password,
                flow: otps[flow]}  # fmt: skip
        response = client.post(f"/login/?{flow}={otps[flow]}", data=data)
        if flow == "mobile_flow_otp":
            assert response.status_code == 302, response.text
            query = parse_qs(urlsplit(response.headers["location"]).query)
            found.append(query["otp_encrypted_api_key"][0])
            continue
        match = _DESKTOP_DATA.search(response.text)
        assert match, response.text
        blob = bytes.fromhex(match.group(1))
        token = AESGCM(bytes.fromhex(otps[flow])).decrypt(blob[:12], blob[12:], b"").decode()
        found.append(token)
        redeemed = client.get(f"/accounts/login/subdomain/{token}")
        assert redeemed.status_code == 302, redeemed.text
        assert client.get(f"/accounts/login/subdomain/{token}").status_code == 400  # used up
        client.cookies.clear()
    return found


def _password_reset(client: httpx.Client, base_url: str, data_dir: Path, new: str) -> str:
    """Request a link, follow it the wrong ways and the right one; the link's token."""
    page = client.get("/accounts/password/reset/")
    response = client.post("/accounts/password/reset/",
                           data={"csrfmiddlewaretoken": _csrf(page), "email": EMAIL})  # fmt: skip
    assert response.status_code == 302, response.text
    link = _wait_for_reset_link(data_dir)
    uid, token = link.group(1), link.group(2)
    path = f"/accounts/password/reset/{uid}/{token}/"
    assert client.get(path[:-1]).status_code == 404  # a mail client ate the trailing slash
    with httpx.Client(trust_env=False, timeout=30, base_url=base_url) as stranger:
        assert stranger.post(path, data={"new_password1": new}).status_code == 403  # no CSRF
    form = client.get(path, follow_redirects=True)
    assert "Set a new password" in form.text, form.text
    fields = {"csrfmiddlewaretoken": _csrf(form), "new_password1": new, "new_password2": new}
    done = client.post(str(form.url), data=fields)
    assert done.status_code == 302, done.text
    assert "does not work" in client.get(path, follow_redirects=True).text  # used up
    _raw_request_line(base_url, f"GET {path}\x7f HTTP/1.1")
    return token


@pytest.mark.e2e
@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_passwords_keys_and_tokens_appear_nowhere(tmp_path: Path, log_format: str) -> None:
    password = "Leak-Canary-" + secrets.token_hex(8)
    wrong = "Wrong-Canary-" + secrets.token_hex(8)
    new_password = "New-Canary-" + secrets.token_hex(8)
    otps = {"mobile_flow_otp": secrets.token_hex(32), "desktop_flow_otp": secrets.token_hex(32)}
    env = {"KEYHOUSE_LOG_LEVEL": "DEBUG", "KEYHOUSE_LOG_FORMAT": log_format}
    data_dir = tmp_path / "data"
    realm = f"leaks {secrets.token_hex(3)}"
    outputs = [
        keyhouse_cli(data_dir, "realm", "create", "--subdomain", "", "--name", realm, env=env),
        keyhouse_cli(data_dir, "user", "create", "--realm", "", "--email", EMAIL,
                     "--full-name", "Canary", "--password-stdin", stdin=password, env=env),
    ]  # fmt: skip
    log = ARTIFACTS / f"leaks-{log_format}.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    proc, base_url = start_server(data_dir, realm, log, env=env)
    error_bodies: list[str] = []
    keys: list[str] = []
    tokens: list[str] = []
    try:
        with httpx.Client(trust_env=False, timeout=30, base_url=base_url) as client:

            def note(response: httpx.Response) -> httpx.Response:
                if response.status_code >= 400:
                    error_bodies.append(response.text + str(response.headers))
                return response

            fetch = "/api/v1/fetch_api_key"
            note(client.post(fetch, data={"username": EMAIL, "password": wrong}))
            # Credentials in the query string, as Zulip allows.
            r = note(client.post(f"{fetch}?username={EMAIL}&password={password}"))
            keys.append(r.json()["api_key"])
            note(client.get("/api/v1/users/me", auth=(EMAIL, keys[0] + "x")))
            note(client.get("/api/v1/users/me", auth=(EMAIL, keys[0][::-1])))
            note(client.get("/api/v1/users/me", auth=("someone@example.com", keys[0])))
            note(client.get("/api/v1/users/me", auth=(EMAIL, keys[0])))
            r = note(client.post("/api/v1/users/me/api_key/regenerate", auth=(EMAIL, keys[0])))
            keys.append(r.json()["api_key"])
            note(client.get("/api/v1/users/me", auth=(EMAIL, keys[0])))
            note(client.post(fetch, data={"username": "nobody@example.com", "password": password}))
            note(client.post(fetch, data={"username": EMAIL, "password": "p" * 5000}))
            note(client.get(f"/api/v1/nope?password={password}&api_key={keys[1]}"))
            _raw_request_line(base_url, f"GET {fetch}?password={password}\x7f HTTP/1.1")
            tokens += _app_flows(client, otps, password)
            tokens.append(_password_reset(client, base_url, data_dir, new_password))
        outputs.append(keyhouse_cli(data_dir, "user", "list", "--realm", "", "--json", env=env))
        outputs.append(keyhouse_cli(data_dir, "user", "regenerate-api-key", "--realm", "",
                                    "--email", EMAIL, env=env))  # fmt: skip
        outputs.append(keyhouse_cli(data_dir, "audit", "list", "--json", env=env))
    finally:
        stop(proc)

    server_log = log.read_text(errors="replace")
    assert "POST /api/v1/fetch_api_key" in server_log  # the log did record the session
    assert "Forbidden (CSRF cookie not set.)" in server_log  # Django's line naming the path
    if SERVED_BY == "gunicorn":
        assert "Invalid request" in server_log  # gunicorn's error log got the bad request lines
    if log_format == "plain":  # the access log names paths: the secret's place is kept
        assert "/accounts/login/subdomain/<redacted>" in server_log
        assert "/accounts/password/reset/" in server_log
    database = b"".join(p.read_bytes() for p in data_dir.glob("keyhouse.sqlite3*"))
    secret_values = (password, wrong, new_password, *keys, *tokens, *otps.values())
    for secret in secret_values:
        assert secret not in server_log, secret
        assert not any(secret in body for body in error_bodies)
        assert not any(secret in out for out in outputs)
    for plaintext in (password, wrong, new_password):  # keys are stored by design; passwords never
        assert plaintext.encode() not in database
