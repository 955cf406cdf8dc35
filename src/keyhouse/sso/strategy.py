"""python-social-auth's Django strategy, with the flow's server-side state as its "session".

social-core keeps an OAuth transaction (state, nonce) in the session between the
redirect to the IdP and the callback. Here that dict is the ``SSOFlow`` row's, so
the callback needs no session cookie and leaves nothing behind in the session.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from social_django.models import DjangoStorage
from social_django.strategy import DjangoStrategy

# The only pipeline steps SSO runs: the IdP's details, then the hand-over to
# keyhouse's own sign-in pipeline (auth/pipeline.py), as Zulip's three-step one.
PIPELINE = [
    "social_core.pipeline.social_auth.social_details",
    "keyhouse.sso.steps.hand_over",
]


class FlowStrategy(DjangoStrategy):
    def __init__(self, request: HttpRequest, flow_session: dict[str, Any]) -> None:
        super().__init__(DjangoStorage, request)
        self.session = flow_session  # type: ignore[assignment]

    def get_pipeline(self, backend: Any = None) -> list[str]:
        return PIPELINE

    def authenticate(self, backend: Any, **kwargs: Any) -> Any:
        # Straight to the backend: Django's authenticate() would walk the password
        # backends; the account checks happen in keyhouse's pipeline instead.
        kwargs.pop("request", None)
        return backend.authenticate(
            self.request, strategy=self, storage=self.storage, backend=backend, **kwargs
        )
