"""Browser-facing routes: sign-in pages, SSO flows for the apps, password reset."""

from django.urls import include, path

from keyhouse.backend_choice import saml_installed, two_factor_installed
from keyhouse.web import (
    api_key_page,  # web core
    app_flows,  # web core
    jwt_login,  # JSON Web Token sign-in (docs/jwt.md)
    login,  # web core
    password_reset,  # web extras
    remote_user,  # remote-user SSO behind a proxy (docs/sso.md)
    sso,  # single sign-on (docs/sso.md)
)

# SAML's routes exist only with python3-saml installed (the ``saml`` extra); they
# come before the generic ``<backend>`` routes, which would otherwise take them.
saml_routes: list = []
if saml_installed():
    from keyhouse.web import saml

    saml_routes = [
        path("saml/metadata.xml", saml.saml_metadata, name="saml_metadata"),
        path("accounts/login/social/saml/<str:idp_name>", saml.saml_login, name="login_saml"),
        path("accounts/register/social/saml/<str:idp_name>", saml.saml_login, name="signup_saml"),
        path("complete/saml/", saml.saml_acs, name="saml_acs"),
    ]

# Two-factor sign-in's account pages exist only with the ``twofactor`` extra; they
# answer a clear 404 page while TWO_FACTOR_AUTHENTICATION_ENABLED is off (Zulip
# routes them only when it is on: a 404 either way).
two_factor_routes: list = []
if two_factor_installed():
    from keyhouse.web import two_factor_pages

    two_factor_routes = [path("", include((two_factor_pages.urlpatterns, "two_factor")))]

urlpatterns: list = [
    # --- login page, mobile/desktop flows, API-key page (web core) ---
    path("login/", login.login_page, name="login"),
    path("accounts/login/", login.login_page, name="accounts_login"),
    path("accounts/logout/", login.logout_page, name="logout"),
    path(
        "accounts/login/subdomain/<str:token>",
        app_flows.log_into_subdomain,
        name="log_into_subdomain",
    ),
    # --- JSON Web Token sign-in (docs/jwt.md) ---
    path("accounts/login/jwt/", jwt_login.jwt_login, name="login_jwt"),
    # --- SAML (single sign-on; docs/sso.md) ---
    *saml_routes,
    # --- single sign-on: Zulip's routes (web/sso.py) ---
    path("accounts/login/social/<str:backend>", sso.login_social, name="login_social"),
    path("accounts/login/social/<str:backend>/<str:idp>", sso.login_social, name="login_social"),
    path("accounts/register/social/<str:backend>", sso.signup_social, name="signup_social"),
    path(
        "accounts/register/social/<str:backend>/<str:idp>", sso.signup_social, name="signup_social"
    ),
    path("complete/<str:backend>/", sso.social_complete, name="social_complete"),
    # --- remote-user SSO: Zulip's routes and names (web/remote_user.py) ---
    path("accounts/login/start/sso/", remote_user.start_remote_user_sso, name="start-login-sso"),
    path("accounts/login/sso/", remote_user.remote_user_sso, name="remote_user_sso"),
    path("account/api-key/", api_key_page.api_key_page, name="api_key"),
    path("account/api-key/zuliprc", api_key_page.download_zuliprc, name="zuliprc"),
    path("account/api-key/regenerate", api_key_page.regenerate_key, name="regenerate_api_key"),
    # --- two-factor sign-in: enrolment, backup codes (docs/security.md) ---
    *two_factor_routes,
    # --- password reset, dev login, admin helpers (web extras) ---
    path("accounts/password/reset/", password_reset.password_reset_request, name="password_reset"),
    path(
        "accounts/password/reset/done/",
        password_reset.password_reset_done,
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        password_reset.password_reset_confirm,
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/done/",
        password_reset.password_reset_complete,
        name="password_reset_complete",
    ),
]
