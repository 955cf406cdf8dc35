"""Zulip's error hierarchy: every failure a client can see, defined in one place.

Each class fixes the HTTP status, ``msg``, ``code`` and extra body fields of one
Zulip error (zerver/lib/exceptions.py). Views and backends raise these; the
middleware turns them into responses, so no view builds error JSON itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from keyhouse.auth import refusals


class JsonableError(Exception):
    """A 400 ``BAD_REQUEST`` with a message for the client, like Zulip's JsonableError."""

    http_status_code: ClassVar[int] = 400
    code: ClassVar[str | None] = "BAD_REQUEST"
    default_msg: ClassVar[str] = ""

    def __init__(self, msg: str | None = None) -> None:
        self.msg = msg if msg is not None else self.default_msg
        super().__init__(self.msg)

    def data_fields(self) -> dict[str, Any]:
        """Extra body fields that come before ``code``, as in Zulip's ``data``."""
        return {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": "error", "msg": self.msg}
        body.update(self.data_fields())
        if self.code is not None:
            body["code"] = self.code
        body.update(self.trailing_fields())
        return body

    def trailing_fields(self) -> dict[str, Any]:
        return {}

    def headers(self) -> dict[str, str]:
        return {}


class RequestVariableMissingError(JsonableError):
    code = "REQUEST_VARIABLE_MISSING"

    def __init__(self, var_name: str) -> None:
        self.var_name = var_name
        super().__init__(f"Missing '{var_name}' argument")

    def data_fields(self) -> dict[str, Any]:
        return {"var_name": self.var_name}


class AuthenticationFailedError(JsonableError):
    http_status_code = 401
    code = "AUTHENTICATION_FAILED"
    default_msg = "Your username or password is incorrect"


class UserDeactivatedError(AuthenticationFailedError):
    code = "USER_DEACTIVATED"
    default_msg = "Account is deactivated"


class RealmDeactivatedError(AuthenticationFailedError):
    code = "REALM_DEACTIVATED"
    default_msg = "This organization has been deactivated"


class PasswordAuthDisabledError(AuthenticationFailedError):
    code = "PASSWORD_AUTH_DISABLED"
    default_msg = "Password authentication is disabled in this organization"


class PasswordResetRequiredError(AuthenticationFailedError):
    code = "PASSWORD_RESET_REQUIRED"
    default_msg = "Your password has been disabled and needs to be reset"


class TwoFactorRequiredError(AuthenticationFailedError):
    """Not a Zulip error: the realm wants the second factor for API keys (docs/security.md).

    A 401 like Zulip's other fetch_api_key refusals, so every client shows ``msg``.
    """

    code = "TWO_FACTOR_REQUIRED"
    default_msg = (
        "This account uses two-factor authentication: log in with a web browser,"
        " which asks for your code"
    )


class InvalidAPIKeyError(JsonableError):
    http_status_code = 401
    code = "INVALID_API_KEY"
    default_msg = "Invalid API key"


class InvalidAPIKeyFormatError(InvalidAPIKeyError):
    default_msg = "Malformed API key"


class InvalidSubdomainError(JsonableError):
    http_status_code = 404
    code = "NONEXISTENT_SUBDOMAIN"
    default_msg = "Invalid subdomain"


class UnauthorizedError(JsonableError):
    """401 with ``WWW-Authenticate``; what every Basic-auth credential error becomes."""

    http_status_code = 401
    code = "UNAUTHORIZED"
    default_msg = "Not logged in: API authentication or user session required"

    def __init__(self, msg: str | None = None, www_authenticate: str = "basic") -> None:
        self.www_authenticate = www_authenticate
        super().__init__(msg)

    def headers(self) -> dict[str, str]:
        scheme = "Session" if self.www_authenticate == "session" else "Basic"
        return {"WWW-Authenticate": f'{scheme} realm="zulip"'}


class RateLimitedError(JsonableError):
    http_status_code = 429
    code = "RATE_LIMIT_HIT"
    default_msg = "API usage exceeded rate limit"

    def __init__(self, secs_to_freedom: float | None = None) -> None:
        self.secs_to_freedom = secs_to_freedom
        super().__init__()

    def trailing_fields(self) -> dict[str, Any]:
        return {"retry-after": self.secs_to_freedom}

    def headers(self) -> dict[str, str]:
        if self.secs_to_freedom is None:
            return {}
        return {"Retry-After": str(self.secs_to_freedom)}


class ServerOverloadedError(JsonableError):
    """The hashing pool is saturated: come back shortly. Not a Zulip error (503)."""

    http_status_code = 503
    code = "SERVER_OVERLOADED"
    default_msg = "The server is busy; try again in a moment"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__()

    def trailing_fields(self) -> dict[str, Any]:
        return {"retry-after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class DirectoryUnavailableError(JsonableError):
    """The LDAP server does not answer (docs/compatibility.md). Not a Zulip error."""

    http_status_code = 503
    code = "LDAP_UNAVAILABLE"
    default_msg = "The login directory is not reachable right now; try again in a few minutes"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class ServiceUnavailableError(JsonableError):
    """The database or Redis is down or hung (keyhouse/outages.py). Not a Zulip error (503)."""

    http_status_code = 503
    code = "SERVICE_UNAVAILABLE"
    default_msg = "The server is temporarily unavailable; try again in a moment"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__()

    def trailing_fields(self) -> dict[str, Any]:
        return {"retry-after": self.retry_after}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MethodNotAllowedError(JsonableError):
    """Zulip's ``json_method_not_allowed``: 405 with no ``code``."""

    http_status_code = 405
    code = None

    def __init__(self, allowed_methods: list[str]) -> None:
        self.allowed_methods = allowed_methods
        super().__init__("Method Not Allowed")

    def data_fields(self) -> dict[str, Any]:
        return {"allowed_methods": self.allowed_methods}

    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed_methods)}


class NotFoundError(JsonableError):
    """An unknown /api/ path. Zulip answers these with an HTML page; we keep JSON."""

    http_status_code = 404
    default_msg = "Not Found"


class AccessDeniedError(JsonableError):
    http_status_code = 403
    default_msg = "Access denied"


class PayloadTooLargeError(JsonableError):
    http_status_code = 413
    default_msg = "Request body too large"


# --- Malformed input (docs/compatibility.md, "Input limits") -----------------------


class InvalidUTF8Error(JsonableError):
    """Bytes Django would silently turn into U+FFFD (or Latin-1): a different password."""

    default_msg = "Request is not valid UTF-8"


class MalformedRequestError(JsonableError):
    """A body or header Django cannot parse; Django itself would raise a 500 for most."""

    default_msg = "Malformed request"


class RepeatedParameterError(JsonableError):
    """Zulip silently takes the last of repeated values; keyhouse refuses to guess."""

    def __init__(self, var_name: str) -> None:
        super().__init__(f"Parameter '{var_name}' was sent more than once")


class ParameterTooLongError(JsonableError):
    """Worded as Zulip's typed_endpoint does for over-long strings."""

    def __init__(self, var_name: str, limit: int) -> None:
        super().__init__(f"{var_name} is too long (limit: {limit} characters)")


class ParameterNulError(JsonableError):
    """NUL is never legitimate and PostgreSQL cannot store it: refuse before any query.

    Worded as Zulip's stream-name check; the value itself is never echoed (it may
    be a password).
    """

    def __init__(self, var_name: str) -> None:
        super().__init__(f"{var_name} contains NULL (0x00) characters")


class InternalServerError(JsonableError):
    """Zulip's JSON 500: no ``code`` and, above all, no traceback."""

    http_status_code = 500
    code = None
    default_msg = "Internal server error"


# --- Session-authenticated /json/ endpoints (web sign-in) --------------------------


class CsrfFailedError(JsonableError):
    """Zulip's CsrfFailureError: a session request without a valid CSRF token (403)."""

    http_status_code = 403
    code = "CSRF_FAILED"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"CSRF error: {reason}")

    def data_fields(self) -> dict[str, Any]:
        return {"reason": self.reason}


# --- The gateway's /auth/verify (docs/gateway.md) ------------------------------------


class ForwardedRequestError(JsonableError):
    """A trusted proxy described the request it checks in a way keyhouse cannot believe.

    Two header families saying different things (``X-Original-URI`` and
    ``X-Forwarded-Uri``), a host outside ``ALLOWED_HOSTS``, a scheme that is
    not http(s): refused rather than guessed, since a guess could check one
    path while the proxy serves another.
    """

    default_msg = "Invalid forwarded request headers"


# --- Sign-in refusals (auth/refusals.py) on the wire: one row per refusal ---------
#
# Like httpx's exception family or DRF's APIException, the domain raises its own
# exceptions and this table alone decides their status, ``msg`` and ``code``. A
# refusal without a row of its own takes its nearest base's (so a new subclass
# can never escape as a 500).

REFUSAL_ERRORS: dict[type[refusals.SignInRefused], Callable[[Any], JsonableError]] = {
    refusals.SignInRefused: lambda r: AuthenticationFailedError(),
    refusals.WrongCredentials: lambda r: AuthenticationFailedError(),
    refusals.NotStaff: lambda r: AuthenticationFailedError(),
    refusals.UserDeactivated: lambda r: UserDeactivatedError(),
    refusals.RealmDeactivated: lambda r: RealmDeactivatedError(),
    refusals.PasswordAuthDisabled: lambda r: PasswordAuthDisabledError(),
    refusals.PasswordResetRequired: lambda r: PasswordResetRequiredError(),
    refusals.WrongRealm: lambda r: InvalidSubdomainError(),
    refusals.PasswordIncorrect: lambda r: JsonableError("Password is incorrect."),
    refusals.RateLimited: lambda r: RateLimitedError(r.secs_to_freedom),
    refusals.HashingOverloaded: lambda r: ServerOverloadedError(r.retry_after),
    refusals.DirectoryUnavailable: lambda r: DirectoryUnavailableError(),
    # zerver/views/auth.py: get_email_and_realm_from_jwt_authentication_request
    refusals.JWTRefused: lambda r: JsonableError("Bad JSON web token"),
    refusals.JWTNotEnabled: lambda r: JsonableError(
        "JWT authentication is not enabled for this organization"
    ),
    refusals.JWTMissing: lambda r: JsonableError("No JSON web token passed in request"),
    refusals.JWTNoEmail: lambda r: JsonableError("No email specified in JSON web token claims"),
    # The operator's misconfiguration (logged): Zulip's JSON 500, never a traceback.
    refusals.JWTKeyUnusable: lambda r: InternalServerError(),
    refusals.SecondFactorRequired: lambda r: TwoFactorRequiredError(),
}


def error_for_refusal(refusal: refusals.SignInRefused) -> JsonableError:
    """The Zulip error a refusal answers with: its class's row, else its nearest base's."""
    for cls in type(refusal).__mro__:
        row = REFUSAL_ERRORS.get(cls)
        if row is not None:
            return row(refusal)
    raise TypeError(f"not a sign-in refusal: {refusal!r}")  # unreachable: the base has a row
