"""Sign-in with GitLab (gitlab.com or self-hosted), as Zulip's GitLabAuthBackend.

Zulip uses the account's primary email only: GitLab's API lists other addresses
without saying which are verified. keyhouse adds one check Zulip leaves out: the
primary counts as verified only if ``/api/v4/user`` reports ``confirmed_at``, since
a GitLab with "soft" email confirmation lets a user in before they confirm it.
``SOCIAL_AUTH_GITLAB_API_URL`` points at a self-hosted GitLab (authorize, token and
API all live under it, as social-core's GitLabOAuth2 builds them).
"""

from __future__ import annotations

from typing import Any

from social_core.backends.gitlab import GitLabOAuth2

from keyhouse.sso.registry import ExternalIdentity, register
from keyhouse.sso.social import SocialBackendMixin, SocialMethod


class KeyhouseGitLab(SocialBackendMixin, GitLabOAuth2):
    name = "gitlab"
    provider = "gitlab"

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        email = (details.get("email") or "").strip()
        confirmed = isinstance(response.get("confirmed_at"), str) and bool(response["confirmed_at"])
        return ExternalIdentity(
            email=email,
            email_verified=bool(email) and confirmed,
            full_name=(details.get("fullname") or "").strip(),
            audit_method="gitlab",
            auto_signup=False,
        )


class GitLabMethod(SocialMethod):
    backend = "gitlab"
    realm_method = "gitlab"
    sort_order = 75  # Zulip's GitLabAuthBackend.sort_order
    display_name = "GitLab"
    display_icon = "/static/images/authentication_backends/gitlab-icon.png"
    backend_class = KeyhouseGitLab


register(GitLabMethod())
