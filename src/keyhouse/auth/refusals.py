"""Every way a sign-in can be refused: one exception family, raised only by auth/.

Each refusal names the Zulip ``code`` the audit trail records for it (the code
the API would answer with) and the audit ``outcome``. How a refusal looks on the
wire is one row of the table in ``api/errors.py``; how it reads on a page, one
row in ``web/refusal_messages.py``. Nothing here imports Django models, so the
low-level modules that raise (the rate limiter, the hashing pool, the LDAP
backend) can import it freely.

``server_fault`` marks the refusals that are the server's doing, not the
client's: the pipeline refunds their login limits, so an outage does not lock
real users out.
"""

from __future__ import annotations

from typing import ClassVar

# LoginAttempt.Outcome's values (auth/models.py), spelled here so that this
# module stays importable before the app registry is ready.
FAILURE = "failure"
RATE_LIMITED_OUTCOME = "rate_limited"
OVERLOADED_OUTCOME = "overloaded"


class SignInRefused(Exception):
    """The base of every refusal: ``code`` for the audit trail and the wire table."""

    code: ClassVar[str] = "AUTHENTICATION_FAILED"
    outcome: ClassVar[str] = FAILURE
    server_fault: ClassVar[bool] = False

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail or self.code)


# --- The client's credentials or account ---------------------------------------


class WrongCredentials(SignInRefused):
    """No backend vouched for the username and password (or told us why)."""


class UserDeactivated(SignInRefused):
    code = "USER_DEACTIVATED"


class RealmDeactivated(SignInRefused):
    code = "REALM_DEACTIVATED"


class PasswordAuthDisabled(SignInRefused):
    """No password backend can serve this realm (none enabled, or none installed)."""

    code = "PASSWORD_AUTH_DISABLED"


class PasswordResetRequired(SignInRefused):
    code = "PASSWORD_RESET_REQUIRED"


class WrongRealm(SignInRefused):
    """The account exists, but in another organization."""

    code = "NONEXISTENT_SUBDOMAIN"


class PasswordIncorrect(SignInRefused):
    """Re-authentication failed: Zulip says only "Password is incorrect." (a 400)."""

    code = "BAD_REQUEST"


class NotStaff(SignInRefused):
    """The Django admin's login: a real account, but not staff."""

    code = "NOT_STAFF"


# --- Two-factor sign-in: the code step after a right password (auth/second_factor.py) ---


class SecondFactorIncorrect(SignInRefused):
    """The code matches none of the account's TOTP devices (a typo, a guess, a stale code)."""

    code = "TOTP_INCORRECT"


class SecondFactorReused(SecondFactorIncorrect):
    """A right code, but one already used: its time step is not after the last accepted one."""

    code = "TOTP_REUSED"


class BackupCodeIncorrect(SecondFactorIncorrect):
    """No unused backup code of the account is this one (each works once)."""

    code = "BACKUP_CODE_INCORRECT"


class SecondFactorRequired(SignInRefused):
    """The password was right, but the realm wants this account's second factor too.

    Beyond Zulip (docs/security.md): fetch_api_key in a realm with
    ``require_2fa_for_api_keys``; the browser sign-in asks for the code instead.
    """

    code = "TWO_FACTOR_REQUIRED"


# --- Single sign-on: the IdP answered, but keyhouse says no (docs/sso.md) --------


class EmailNotVerified(SignInRefused):
    """The IdP does not vouch for the email (OIDC ``email_verified`` is not true)."""

    code = "EMAIL_NOT_VERIFIED"


class NoAccount(SignInRefused):
    """A verified email the realm has no account for, and the IdP may not create one."""

    code = "NO_ACCOUNT"


class IdPFailed(SignInRefused):
    """The IdP's side failed: denied, wrong state, bad token, unreachable; ``detail`` is shown."""

    code = "IDP_ERROR"

    def __init__(self, detail: str, code: str = "IDP_ERROR") -> None:
        super().__init__(detail)
        # The audit trail's reason says which failure (e.g. SSO_STATE_INVALID).
        self.code = code  # type: ignore[misc]


# --- JSON Web Tokens (auth/jwt_tokens.py, docs/jwt.md): Zulip's four answers -------


class JWTRefused(SignInRefused):
    """The token, not the account, is refused: Zulip answers these with a 400."""

    code = "JWT_INVALID"


class JWTNotEnabled(JWTRefused):
    """No ``JWT_AUTH_KEYS`` entry for this realm's subdomain."""

    code = "JWT_NOT_ENABLED"


class JWTMissing(JWTRefused):
    code = "JWT_MISSING"


class JWTInvalid(JWTRefused):
    """Bad signature, expired, wrong algorithm, malformed…; ``code`` says which."""

    def __init__(self, code: str = "JWT_INVALID", detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code  # type: ignore[misc]


class JWTNoEmail(JWTRefused):
    """A valid token without an ``email`` claim."""

    code = "JWT_NO_EMAIL"


class JWTKeyUnusable(JWTRefused):
    """The configured key cannot be read or used: the operator's to fix, not the client's."""

    code = "JWT_KEY_UNUSABLE"
    server_fault = True


class RemoteUserUntrusted(SignInRefused):
    """Remote-user SSO: the user-name header came from a peer not in TRUSTED_PROXIES.

    Ignored (as if absent) and audited: anyone who reaches keyhouse directly
    could otherwise name any user.
    """

    code = "REMOTE_USER_UNTRUSTED"


# --- Limits and the server's state ----------------------------------------------


class RateLimited(SignInRefused):
    """Over a limit (any limited action, not only sign-in): Zulip's 429 RATE_LIMIT_HIT."""

    code = "RATE_LIMIT_HIT"
    outcome = RATE_LIMITED_OUTCOME

    def __init__(self, secs_to_freedom: float) -> None:
        self.secs_to_freedom = secs_to_freedom
        super().__init__(f"rate limited for {secs_to_freedom:.1f}s")


class HashingOverloaded(SignInRefused):
    """Too many password verifications waiting; answered with a 503."""

    code = "SERVER_OVERLOADED"
    outcome = OVERLOADED_OUTCOME
    server_fault = True

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__("password hashing pool is saturated")


class DirectoryUnavailable(SignInRefused):
    """The LDAP server is down or too slow: not the user's fault, so not a "no"."""

    code = "LDAP_UNAVAILABLE"
    server_fault = True


# --- Single sign-on: the identity provider's answer, or what we make of it ----------


class SSORefused(SignInRefused):
    """An SSO sign-in refused; ``detail`` is the reason, for the audit trail and the logs.

    Never the IdP's raw message in a page: the page shows the subclass's wording.
    """

    code = "SSO_FAILED"


class SSOMethodDisabled(SSORefused):
    """The realm does not enable this method, or this IdP is not for this realm."""

    code = "SSO_METHOD_DISABLED"


class SSOInvalidResponse(SSORefused):
    """The IdP's message failed a check: signature, audience, destination, issuer…"""

    code = "SSO_INVALID_RESPONSE"


class SSOSignatureInvalid(SSOInvalidResponse):
    code = "SSO_BAD_SIGNATURE"


class SSOAudienceMismatch(SSOInvalidResponse):
    code = "SSO_WRONG_AUDIENCE"


class SSOExpired(SSOInvalidResponse):
    """The assertion is outside its validity window (or our clock is off)."""

    code = "SSO_EXPIRED"


class SSOUnsolicited(SSOInvalidResponse):
    """A response to no request we have outstanding: replayed, forged, or too late."""

    code = "SSO_UNSOLICITED"


class SSONoEmail(SSORefused):
    """The IdP vouched for someone but sent no usable email to match an account by."""

    code = "SSO_NO_EMAIL"


# Backend ``return_data`` flags → refusal, in Zulip's fetch_api_key order (§1.6);
# the first flag set wins, and no flag at all is a wrong password.
PASSWORD_FLAG_ORDER: tuple[tuple[str, type[SignInRefused]], ...] = (
    ("inactive_user", UserDeactivated),
    ("inactive_realm", RealmDeactivated),
    ("password_auth_disabled", PasswordAuthDisabled),
    ("password_reset_needed", PasswordResetRequired),
    ("invalid_subdomain", WrongRealm),
)
# Zulip's dev_login checks realm, then user, then subdomain.
DEV_FLAG_ORDER: tuple[tuple[str, type[SignInRefused]], ...] = (
    ("inactive_realm", RealmDeactivated),
    ("inactive_user", UserDeactivated),
    ("invalid_subdomain", WrongRealm),
)
# Single sign-on (OIDC and SAML): the realm, then the user, then the other realm,
# then no account.
SSO_FLAG_ORDER: tuple[tuple[str, type[SignInRefused]], ...] = (
    ("inactive_realm", RealmDeactivated),
    ("inactive_user", UserDeactivated),
    ("invalid_subdomain", WrongRealm),
    ("no_account", NoAccount),
)

# The admin's staff login: the audit trail tells why, the form says one thing.
STAFF_FLAG_ORDER: tuple[tuple[str, type[SignInRefused]], ...] = (
    ("inactive_realm", RealmDeactivated),
    ("inactive_user", UserDeactivated),
    ("password_reset_needed", PasswordResetRequired),
    ("not_staff", NotStaff),
)
# The code step (auth/second_factor.py): the account may have changed since its
# password step; then the code's verdict, exactly one flag.
SECOND_FACTOR_FLAG_ORDER: tuple[tuple[str, type[SignInRefused]], ...] = (
    ("inactive_realm", RealmDeactivated),
    ("inactive_user", UserDeactivated),
    ("code_reused", SecondFactorReused),
    ("backup_code_wrong", BackupCodeIncorrect),
    ("code_wrong", SecondFactorIncorrect),
)
# What HIDE_ACCOUNT_STATE hides (OWASP ASVS 6.3.8): these answer as a wrong password.
ACCOUNT_STATE: tuple[type[SignInRefused], ...] = (UserDeactivated, WrongRealm)


def refusal_for_flags(
    flags: dict[str, object],
    order: tuple[tuple[str, type[SignInRefused]], ...] = PASSWORD_FLAG_ORDER,
) -> SignInRefused:
    """The refusal the backends' flags call for: the first set flag in ``order``."""
    for flag, refusal in order:
        if flags.get(flag):
            return refusal()
    return WrongCredentials()


def shown_to_client(refusal: SignInRefused, *, hide_account_state: bool) -> SignInRefused:
    """What the client is told; the audit trail always keeps the true refusal."""
    if hide_account_state and isinstance(refusal, ACCOUNT_STATE):
        return WrongCredentials()
    return refusal
