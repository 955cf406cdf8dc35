"""Sign-in with GitHub, as Zulip's GitHubAuthBackend.

Only emails GitHub lists as verified (its ``/user/emails`` API) count, the
primary first; ``@users.noreply.github.com`` addresses only for an existing
account. With several verified addresses the user chooses one on a page
(sso/social.py's ``EmailChoice``), unless exactly one has an account here and
this is not a signup: Zulip's rule in ``social_associate_user_helper``.
``SOCIAL_AUTH_GITHUB_TEAM_ID`` or ``SOCIAL_AUTH_GITHUB_ORG_NAME`` restrict
sign-in to members, checked by social-core's team/organization backends.
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
from keyhouse.sso.registry import EmailOption, ExternalIdentity, register
from keyhouse.sso.social import (
    EmailChoiceNeeded,
    PolicyRefusal,
    SocialBackendMixin,
    SocialMethod,
)

NOREPLY_SUFFIX = "@users.noreply.github.com"


class KeyhouseGitHub(SocialBackendMixin, GithubOAuth2):
    name = "github"
    provider = "github"
    # user:email lets /user/emails answer with each address's "verified" flag.
    DEFAULT_SCOPE = ["user:email"]

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

    def _usable(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        """Zulip's get_usable_email_objects: noreply addresses only for an existing account."""
        usable = []
        for obj in response.get("emails") or []:
            if not isinstance(obj, dict) or not isinstance(obj.get("email"), str):
                continue
            email = obj["email"]
            if email and (not email.endswith(NOREPLY_SUFFIX) or self._has_account(email)):
                usable.append(obj)  # noreply ones cannot receive mail
        return usable

    def verified_emails(self, response: dict[str, Any]) -> list[str]:
        """Zulip's get_verified_emails: verified and usable, the primary first."""
        verified: list[str] = []
        for obj in self._usable(response):
            if not obj.get("verified"):
                continue
            if obj.get("primary"):
                verified.insert(0, obj["email"])
            else:
                verified.append(obj["email"])
        return verified

    def unverified_emails(self, response: dict[str, Any]) -> list[str]:
        return [obj["email"] for obj in self._usable(response) if not obj.get("verified")]

    def _has_account(self, email: str) -> bool:
        return self.realm is not None and common_get_active_user(email, self.realm, {}) is not None

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        verified = self.verified_emails(response)
        full_name = (details.get("fullname") or "").strip()
        if len(verified) > 1:
            with_account = [e for e in verified if self._has_account(e)]
            if len(with_account) != 1 or self.is_signup:
                options = [EmailOption(e, e in with_account) for e in verified]
                raise EmailChoiceNeeded(options, self.unverified_emails(response), full_name)
            verified = with_account
        return ExternalIdentity(
            email=verified[0] if verified else (details.get("email") or ""),
            email_verified=bool(verified),
            full_name=full_name,
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


register(GitHubMethod())
