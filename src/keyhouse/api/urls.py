"""Routes under /api/v1/ (Zulip's v1_api_mobile_patterns and REST paths we serve)."""

from django.urls import path

from keyhouse.api.views.dev import dev_fetch_api_key, dev_list_users
from keyhouse.api.views.fetch_api_key import fetch_api_key
from keyhouse.api.views.jwt_fetch_api_key import jwt_fetch_api_key
from keyhouse.api.views.server_settings import server_settings
from keyhouse.api.views.users import get_own_user, regenerate_api_key

urlpatterns = [
    path("fetch_api_key", fetch_api_key),
    path("jwt/fetch_api_key", jwt_fetch_api_key),
    path("server_settings", server_settings),
    path("users/me", get_own_user),
    path("users/me/api_key/regenerate", regenerate_api_key),
    # Development only (reference §2): a JSON 404 unless DEV_MODE is on.
    path("dev_fetch_api_key", dev_fetch_api_key),
    path("dev_list_users", dev_list_users),
]
