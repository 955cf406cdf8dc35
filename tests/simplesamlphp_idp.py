"""Debian's SimpleSAMLphp as a second, product-grade SAML IdP for the tests, on 127.0.0.1.

SimpleSAMLphp (``apt-get install simplesamlphp``; php-cli, php-xml, php-mbstring)
is served by PHP's built-in web server (``php -S``) from the package's ``www/``,
with a throwaway configuration directory made here: ``config.php`` (base URL on
the chosen port, file logging, PHP sessions in the directory, insecure cookies
since the tests speak plain HTTP), ``authsources.php`` with one
``exampleauth:UserPass`` user, a hosted IdP signing with RSA-SHA256 and a key
made at start, and keyhouse's own SP metadata (as served at /saml/metadata.xml)
read through SimpleSAMLphp's ``xml`` metadata source. No file of the package is
changed and nothing listens beyond loopback.

It is slower to start than the pysaml2 IdP (tests/saml_idp.py) and is not
needed by ``make test``: the module using it skips, saying why, when PHP or
SimpleSAMLphp is not installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.ports import free_port
from tests.saml_idp import cert_body, make_key_and_cert

WWW = Path("/usr/share/simplesamlphp/www")
USERNAME = "alice"
EMAIL = "alice@example.com"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def unavailable_reason() -> str | None:
    """Why SimpleSAMLphp cannot be served here, or None if it can be tried."""
    if shutil.which("php") is None:
        return "php (php-cli) is not installed"
    if not (WWW / "saml2" / "idp" / "SSOService.php").exists():
        return f"SimpleSAMLphp is not installed ({WWW} missing: apt-get install simplesamlphp)"
    probe = subprocess.run(
        ["php", "-m"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.lower()
    missing = [m for m in ("dom", "mbstring", "openssl", "simplexml") if m not in probe]
    if missing:
        return f"PHP modules missing: {', '.join(missing)} (php-xml, php-mbstring)"
    return None


def _php(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SimpleSAMLphpIdP:
    """One SimpleSAMLphp IdP under ``php -S``; ``load_sp_metadata`` before the first sign-in."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="simplesamlphp-"))
        self.password = secrets.token_urlsafe(12)
        key_pem, self.cert_pem = make_key_and_cert("keyhouse test SimpleSAMLphp IdP")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.base}/saml2/idp/metadata.php"
        self.sso_url = f"{self.base}/saml2/idp/SSOService.php"
        self.slo_url = f"{self.base}/saml2/idp/SingleLogoutService.php"
        for sub in ("config", "metadata", "cert", "data", "tmp", "log", "sessions"):
            (self.dir / sub).mkdir()
        (self.dir / "cert" / "server.pem").write_text(key_pem)
        (self.dir / "cert" / "server.crt").write_text(self.cert_pem)
        self.sp_metadata_file = self.dir / "sp-metadata.xml"
        self._write_config()
        self._server_log = open(self.dir / "log" / "php-server.log", "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(WWW)],
            cwd=WWW,
            env={**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(self.dir / "config")},
            stdout=self._server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # no php left behind by a server that never came up
            raise

    def _write_config(self) -> None:
        d = self.dir
        (d / "config" / "config.php").write_text(
            f"""<?php
$config = [
    'baseurlpath' => {_php(self.base + "/")},
    'certdir' => {_php(str(d / "cert") + "/")},
    'loggingdir' => {_php(str(d / "log") + "/")},
    'datadir' => {_php(str(d / "data") + "/")},
    'tempdir' => {_php(str(d / "tmp") + "/")},
    'metadatadir' => {_php(str(d / "metadata") + "/")},
    'attributenamemapdir' => '/etc/simplesamlphp/attributemap/',  // the package's maps
    'metadata.sources' => [
        ['type' => 'flatfile', 'directory' => {_php(str(d / "metadata") + "/")}],
        ['type' => 'xml', 'file' => {_php(str(self.sp_metadata_file))}],
    ],
    'technicalcontact_name' => 'keyhouse tests',
    'technicalcontact_email' => 'tests@example.com',
    'secretsalt' => {_php(secrets.token_hex(16))},
    'auth.adminpassword' => {_php(secrets.token_hex(16))},
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'admin.checkforupdates' => false,
    'timezone' => 'UTC',
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',
    'logging.level' => SimpleSAML\\Logger::DEBUG,
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => {_php(str(d / "sessions"))},
    // The tests speak plain HTTP on loopback: secure cookies would never come back
    // (Debian's LTS notes: the "too many redirects" loop).
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'language.cookie.secure' => false,
    'showerrors' => true,
    'errorreporting' => false,
    'production' => false,
    'trusted.url.domains' => ['127.0.0.1:{self.port}', 'example.org', 'other.example.org'],
];
"""
        )
        (d / "config" / "authsources.php").write_text(
            f"""<?php
$config = [
    'example-userpass' => [
        'exampleauth:UserPass',
        {_php(f"{USERNAME}:{self.password}")} => [
            'uid' => ['alice'],
            'mail' => [{_php(EMAIL)}],
            'givenName' => ['Alice'],
            'sn' => ['Liddell'],
        ],
    ],
];
"""
        )
        (d / "metadata" / "saml20-idp-hosted.php").write_text(
            f"""<?php
$metadata[{_php(self.entity_id)}] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'server.pem',
    'certificate' => 'server.crt',
    'auth' => 'example-userpass',
    'signature.algorithm' => {_php(RSA_SHA256)},
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    // OID names, as keyhouse (and Zulip) expect by default; the map runs first, so the
    // NameID (the email: Zulip's IdP-initiated logout finds the user by it) is named by OID.
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri',
    'authproc' => [100 => ['class' => 'core:AttributeMap', 'name2oid']],
    'simplesaml.nameidattribute' => 'urn:oid:0.9.2342.19200300.100.1.3',
    // Every AuthnRequest and LogoutRequest keyhouse sends must be signed.
    'validate.authnrequest' => true,
    'validate.logout' => true,
    'sign.logout' => true,
    'redirect.sign' => true,
];
"""
        )
        self.sp_metadata_file.write_text("")

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"php -S exited ({self._process.returncode}): {self.logs()}")
            try:
                if httpx.get(self.entity_id, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SimpleSAMLphp did not answer in {timeout:.0f} s: {self.logs()}"
                )
            time.sleep(0.2)

    def load_sp_metadata(self, sp_metadata_xml: str) -> None:
        """keyhouse's SP metadata, read by SimpleSAMLphp on every request."""
        self.sp_metadata_file.write_text(sp_metadata_xml)

    def sp_config(self, **extra: Any) -> dict[str, Any]:
        """This IdP's entry for SOCIAL_AUTH_SAML_ENABLED_IDPS."""
        return {
            "entity_id": self.entity_id,
            "url": self.sso_url,
            "slo_url": self.slo_url,
            "x509cert": cert_body(self.cert_pem),
            "display_name": "SimpleSAMLphp",
            **extra,
        }

    def logs(self) -> str:
        """The PHP server's and SimpleSAMLphp's logs (tail), for a failing test's message."""
        parts = []
        for name in ("php-server.log", "simplesamlphp.log"):
            path = self.dir / "log" / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._server_log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
