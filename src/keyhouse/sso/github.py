"""Sign-in with GitHub, as Zulip's GitHubAuthBackend.

Only emails GitHub lists as verified (its ``/user/emails`` API) count, the
primary first; ``@users.noreply.github.com`` addresses only for an existing
account. ``SOCIAL_AUTH_GITHUB_TEAM_ID`` or ``SOCIAL_AUTH_GITHUB_ORG_NAME``
restrict sign-in to members, checked by social-core's team/organization backends.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from social_core.backends.github import (
    GithubOAuth2,
    GithubOrganizationOAuth2,
    GithubTeamOAuth2,
)
from social_core.exceptions import AuthPolicyError

from keyhouse.auth.backends import common_get_active_user
from keyhouse.sso.registry import ExternalIdentity, register
from keyhouse.sso.social import PolicyRefusal, SocialBackendMixin, SocialMethod

NOREPLY_SUFFIX = "@users.noreply.github.com"


class KeyhouseGitHub(SocialBackendMixin, GithubOAuth2):
    name = "github"
    # user:email lets /user/emails answer with each address's "verified" flag.
    DEFAULT_SCOPE = ["user:email"]

    def get_key_and_secret(self) -> tuple[str, str]:
        return settings.SOCIAL_AUTH_GITHUB_KEY or "", github_secret()

    def api_url(self) -> str:
        return str(self.setting("API_URL", self.API_URL))

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Zulip's: one backend for the three social-core GitHub ones."""
        team_id = settings.SOCIAL_AUTH_GITHUB_TEAM_ID
        org_name = settings.SOCIAL_AUTH_GITHUB_ORG_NAME
        if team_id is None and org_name is None:
            return super().user_data(access_token, *args, **kwargs)
        member_class = _GitHubTeam if team_id is not None else _GitHubOrg
        member = member_class(self.strategy, redirect_uri=self.redirect_uri)
        member.parent = self
        try:
            return member.user_data(access_token, *args, **kwargs)
        except AuthPolicyError:
            what = "team" if team_id is not None else "organization"
            raise PolicyRefusal(f"GitHub user is not member of required {what}") from None

    def verified_emails(self, response: dict[str, Any]) -> list[str]:
        """Zulip's get_verified_emails: verified and usable, the primary first."""
        verified: list[str] = []
        for obj in response.get("emails") or []:
            if not isinstance(obj, dict) or not obj.get("verified") or not obj.get("email"):
                continue
            email = str(obj["email"])
            if email.endswith(NOREPLY_SUFFIX) and not self._has_account(email):
                continue  # cannot receive mail: only for an account that already exists
            if obj.get("primary"):
                verified.insert(0, email)
            else:
                verified.append(email)
        return verified

    def _has_account(self, email: str) -> bool:
        return self.realm is not None and common_get_active_user(email, self.realm, {}) is not None

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        verified = self.verified_emails(response)
        # Zulip shows a choice page when several addresses are verified; keyhouse
        # takes the first (primary first) that has an account here, else the primary.
        primary = verified[0] if verified else ""
        chosen = next((e for e in verified if self._has_account(e)), primary)
        return ExternalIdentity(
            email=chosen or (details.get("email") or ""),
            email_verified=bool(chosen),
            full_name=(details.get("fullname") or "").strip(),
            audit_method="github",
            auto_signup=False,
        )


class _Member:
    """Team/organization checks against the same API as the main backend."""

    parent: KeyhouseGitHub

    def api_url(self) -> str:
        return self.parent.api_url()

    def setting(self, name: str, default: Any = None) -> Any:
        if name == "NAME":
            return settings.SOCIAL_AUTH_GITHUB_ORG_NAME
        if name == "ID":
            return settings.SOCIAL_AUTH_GITHUB_TEAM_ID
        return self.parent.setting(name, default)


class _GitHubOrg(_Member, GithubOrganizationOAuth2):
    pass


class _GitHubTeam(_Member, GithubTeamOAuth2):
    pass


class GitHubMethod(SocialMethod):
    backend = "github"
    realm_method = "github"
    sort_order = 100  # Zulip's GitHubAuthBackend.sort_order
    display_name = "GitHub"
    display_icon = "/static/images/authentication_backends/github-icon.png"
    backend_class = KeyhouseGitHub

    def configured(self) -> bool:
        return bool(settings.SOCIAL_AUTH_GITHUB_KEY and github_secret())


def github_secret() -> str:
    """The client secret, or the ``_FILE``'s content read at use (rotation needs no restart)."""
    path = settings.SOCIAL_AUTH_GITHUB_SECRET_FILE
    if path:
        from pathlib import Path

        return Path(path).read_text().strip()
    return settings.SOCIAL_AUTH_GITHUB_SECRET or ""


register(GitHubMethod())
