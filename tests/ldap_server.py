"""A real, throwaway OpenLDAP slapd for tests: its own port, config and data.

Mocking LDAP would test our idea of django-auth-ldap and of a directory, not either
of them; a real slapd starts in a few milliseconds. `Slapd` owns one child process
(its own process group, killed at `stop()`, at interpreter exit, and by the kernel
if the thread that started it dies: start it from a thread that outlives it, such
as pytest's main thread), and can stop, restart on the same port and data, or
freeze (`pause()`) to play a directory that is down or hung.

The directory holds `dc=example,dc=com` with people under `ou=people`, each an
`inetOrgPerson` plus the auxiliary `keyhouseTestAccount`, which adds the attributes
Zulip's LDAP features read: `userAccountControl` (Active Directory's integer whose
bit 2 means disabled), `keyhouseDeactivated` (for Zulip's `deactivated` mapping:
TRUE/FALSE/YES/NO) and the multi-valued `keyhouseOrg` (for `org_membership`).
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import hashlib
import os
import secrets
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ldap
import ldap.dn

from tests.ports import free_port
from tests.process_state import wait_stopped

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
PEOPLE_DN = f"ou=people,{SUFFIX}"
SERVICES_DN = f"ou=services,{SUFFIX}"
SERVICE_DN = f"cn=keyhouse,{SERVICES_DN}"
SERVICE_PASSWORD = "service-secret"

HAMLET_PASSWORD = "hamlet-ldap-pw-1"
OPHELIA_PASSWORD = "ophelia-ldap-pw-2"
NEWUSER_PASSWORD = "newuser-ldap-pw-3"
SHARED_PASSWORD = "shared-ldap-pw-4"
NOMAIL_PASSWORD = "nomail-ldap-pw-5"
SHARED_EMAIL = "shared@example.com"

# The people every test starts with (`Slapd.reset()`): keyword arguments of add_user.
BASE_USERS: dict[str, dict[str, Any]] = {
    "hamlet": {"cn": "King Hamlet", "mail": "hamlet@example.com", "password": HAMLET_PASSWORD},
    "ophelia": {
        "cn": "Ophelia",
        "given_name": "Ophelia",
        "sn": "Polonius-daughter",
        "mail": "ophelia@example.com",
        "password": OPHELIA_PASSWORD,
    },
    "newuser": {"cn": "New User", "mail": "newuser@example.com", "password": NEWUSER_PASSWORD},
    # Two entries with one address: Zulip's "multiple users with this email" case.
    "shared1": {"cn": "Shared One", "mail": SHARED_EMAIL, "password": SHARED_PASSWORD},
    "shared2": {"cn": "Shared Two", "mail": SHARED_EMAIL, "password": SHARED_PASSWORD},
    "nomail": {"cn": "No Mail", "password": NOMAIL_PASSWORD},
}

# Private-arc OIDs: nothing outside these tests will ever see them.
TEST_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'userAccountControl'
    DESC 'Active Directory account flags; bit 2 (ACCOUNTDISABLE) means disabled'
    EQUALITY integerMatch ORDERING integerOrderingMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'keyhouseDeactivated'
    DESC 'For Zulip deactivated mapping: TRUE/FALSE/YES/NO'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'keyhouseOrg'
    DESC 'For Zulip org_membership: subdomains this person may use'
    EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'keyhouseTestAccount'
    DESC 'Attributes keyhouse tests map, on top of inetOrgPerson'
    SUP top AUXILIARY
    MAY ( userAccountControl $ keyhouseDeactivated $ keyhouseOrg ) )
"""

# add_user's keyword names → LDAP attribute names (modify() accepts either).
ATTRIBUTE_NAMES = {
    "given_name": "givenName",
    "user_account_control": "userAccountControl",
    "deactivated": "keyhouseDeactivated",
    "orgs": "keyhouseOrg",
    "password": "userPassword",
}

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: never load libraries after fork
_LIVE: set[Slapd] = set()


def user_dn(uid: str) -> str:
    return f"uid={ldap.dn.escape_dn_chars(uid)},{PEOPLE_DN}"


def ssha(password: str) -> str:
    """A salted SHA-1 userPassword, as real directories hold them (never plain text)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if pytest is SIGKILLed, slapd goes too.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _values(value: Any) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, bool):
        value = "TRUE" if value else "FALSE"
    if isinstance(value, str | bytes | int):
        value = [value]
    return [v if isinstance(v, bytes) else str(v).encode() for v in value]


def _config(workdir: Path, admin_password: str) -> str:
    schemas = [SCHEMA_DIR / f"{name}.schema" for name in ("core", "cosine", "inetorgperson", "nis")]
    includes = "\n".join(f'include "{path}"' for path in [*schemas, workdir / "keyhouse.schema"])
    return f"""\
{includes}
pidfile "{workdir / "slapd.pid"}"
argsfile "{workdir / "slapd.args"}"
modulepath "{MODULE_DIR}"
moduleload back_mdb
loglevel none

access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
maxsize 67108864
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw "{admin_password}"
directory "{workdir / "data"}"
dbnosync
index objectClass eq
index uid,mail eq

# People authenticate by binding with their own password; nobody reads the hashes.
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
# The service account (django-auth-ldap's AUTH_LDAP_BIND_DN) searches and reads.
access to *
    by dn.exact="{SERVICE_DN}" read
    by users read
    by * none
"""


class Slapd:
    """One slapd child on 127.0.0.1; its data survives `stop()`/`start()`."""

    def __init__(self, tmp_dir: Path | str, port: int | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="slapd-", dir=tmp_dir))
        (self.workdir / "data").mkdir()
        (self.workdir / "keyhouse.schema").write_text(TEST_SCHEMA)
        self.config_file = self.workdir / "slapd.conf"
        # Each server its own rootpw: a probe can't mistake another slapd on the port for it.
        self.admin_password = "admin-" + secrets.token_hex(8)
        self.config_file.write_text(_config(self.workdir, self.admin_password))
        self.log_file = self.workdir / "slapd.log"
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._seeded = False

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def paused(self) -> bool:
        return self.running and self._paused

    # --- process ---------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart, same port and data) and return once a bind succeeds."""
        if self.running:
            return
        for attempt in range(3):
            try:
                self._spawn(timeout)
                break
            except _ExitedEarly as exc:
                # Lost a race for the port between free_port() and slapd's bind()?
                lost_race = "already in use" in str(exc)
                if not lost_race or self._fixed_port or self._seeded or attempt == 2:
                    raise
                self.port = free_port()
        if not self._seeded:
            self.reset()
            self._seeded = True

    def _spawn(self, timeout: float) -> None:
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                # -d keeps slapd in the foreground, a child we can wait for and kill.
                [SLAPD, "-f", str(self.config_file), "-h", f"{self.uri}/", "-d", "none"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._paused = False
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                _LIVE.discard(self)
                raise _ExitedEarly(
                    f"slapd exited with {self._process.returncode}:\n{self.log_tail(log_start)}"
                )
            try:
                with self._admin(timeout=1.0):
                    pass
                return
            except (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR, ldap.INVALID_CREDENTIALS):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"slapd did not answer on {self.uri}:\n{self.log_tail(log_start)}"
                    ) from None
                time.sleep(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate slapd (cleanly, so its database is closed); SIGKILL if it lingers."""
        process, self._process = self._process, None
        _LIVE.discard(self)
        self._paused = False
        if process is None:
            return
        if process.poll() is None:
            self._signal(process, signal.SIGCONT)  # a stopped process can't act on SIGTERM
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing answers."""
        if self._process is None or not self.running:
            raise RuntimeError("slapd is not running")
        self._signal(self._process, signal.SIGSTOP)
        wait_stopped([self._process.pid])
        self._paused = True

    def resume(self) -> None:
        if self._process is not None:
            self._signal(self._process, signal.SIGCONT)
        self._paused = False

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(process.pid, sig)  # start_new_session: its pid is its group id
        except ProcessLookupError:
            pass

    def log_tail(self, start: int = 0, lines: int = 20) -> str:
        """The last lines slapd wrote (since byte `start`): why it would not start."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(start)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- data, written as the rootdn ----------------------------------------------
    def connect(
        self, who: str = "", password: str = "", *, timeout: float = 5.0
    ) -> ldap.ldapobject.LDAPObject:
        """A python-ldap connection (bound if `who` is given) with bounded waits."""
        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
        conn.set_option(ldap.OPT_TIMEOUT, timeout)
        if who:
            conn.simple_bind_s(who, password)
        return conn

    @contextmanager
    def _admin(self, timeout: float = 5.0) -> Iterator[ldap.ldapobject.LDAPObject]:
        conn = self.connect(ADMIN_DN, self.admin_password, timeout=timeout)
        try:
            yield conn
        finally:
            conn.unbind_s()

    def add_user(
        self,
        uid: str,
        *,
        cn: str,
        mail: str | Iterable[str] | None = None,
        password: str | None = None,
        sn: str | None = None,
        given_name: str | None = None,
        user_account_control: int | None = None,
        deactivated: str | bool | None = None,
        orgs: str | Iterable[str] | None = None,
    ) -> str:
        """Add `uid=<uid>,ou=people,…` and return its DN. `sn` defaults from `cn`."""
        entry = {
            "objectClass": ["inetOrgPerson", "keyhouseTestAccount"],
            "uid": uid,
            "cn": cn,
            "sn": sn or cn.split()[-1],
            "givenName": given_name,
            "mail": mail,
            "userPassword": ssha(password) if password is not None else None,
            "userAccountControl": user_account_control,
            "keyhouseDeactivated": deactivated,
            "keyhouseOrg": orgs,
        }
        dn = user_dn(uid)
        with self._admin() as conn:
            _add(conn, dn, entry)
        return dn

    def modify(self, uid: str, **attrs: Any) -> None:
        """Replace attributes (add_user's keyword names or LDAP names); None deletes."""
        changes = []
        for name, value in attrs.items():
            attr = ATTRIBUTE_NAMES.get(name, name)
            if attr == "userPassword" and isinstance(value, str):
                value = ssha(value)
            # MOD_REPLACE with no values deletes, and is no error if the attribute is absent.
            changes.append((ldap.MOD_REPLACE, attr, _values(value) or None))
        with self._admin() as conn:
            conn.modify_s(user_dn(uid), changes)

    def delete_user(self, uid: str) -> None:
        with self._admin() as conn:
            conn.delete_s(user_dn(uid))

    def reset(self) -> None:
        """Empty the directory and put back the base entries and `BASE_USERS`."""
        suffix = ldap.dn.str2dn(SUFFIX)
        with self._admin() as conn:
            try:
                found = conn.search_s(SUFFIX, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
            except ldap.NO_SUCH_OBJECT:
                found = []
                _add(
                    conn,
                    SUFFIX,
                    {"objectClass": ["dcObject", "organization"], "dc": "example", "o": "Example"},
                )
            # Deepest first, so no entry is deleted before its children.
            dns = [ldap.dn.str2dn(dn) for dn, _ in found]
            for dn in sorted(dns, key=len, reverse=True):
                if dn != suffix:
                    conn.delete_s(ldap.dn.dn2str(dn))
            for ou in ("people", "services"):
                _add(conn, f"ou={ou},{SUFFIX}", {"objectClass": "organizationalUnit", "ou": ou})
            _add(
                conn,
                SERVICE_DN,
                {
                    "objectClass": ["organizationalRole", "simpleSecurityObject"],
                    "cn": "keyhouse",
                    "userPassword": ssha(SERVICE_PASSWORD),
                },
            )
        for uid, attrs in BASE_USERS.items():
            self.add_user(uid, **attrs)


def _add(conn: ldap.ldapobject.LDAPObject, dn: str, entry: dict[str, Any]) -> None:
    conn.add_s(dn, [(attr, values) for attr, value in entry.items() if (values := _values(value))])


class _ExitedEarly(RuntimeError):
    pass


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(timeout=2.0)
