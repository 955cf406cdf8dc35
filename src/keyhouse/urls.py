from django.contrib import admin
from django.urls import include, path

from keyhouse.api.views.json_fetch_api_key import json_fetch_api_key
from keyhouse.gateway.verify import verify
from keyhouse.ops import health, metrics

urlpatterns = [
    path("api/v1/", include("keyhouse.api.urls")),
    path("admin/", admin.site.urls),
    # --- ops: liveness, readiness, Prometheus (docs/deploy.md) ---
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # --- end ops ---
    # --- gateway: the forward-auth check for nginx, Caddy, Traefik (docs/gateway.md) ---
    path("auth/verify", verify, name="gateway_verify"),
    # --- end gateway ---
    # --- web sign-in: the session-authenticated JSON view ---
    path("json/fetch_api_key", json_fetch_api_key),
    path("", include("keyhouse.web.urls")),
]

# An outage under a middleware (no view's process_exception sees it): 503, not 500.
handler500 = "keyhouse.api.server_error.server_error"
