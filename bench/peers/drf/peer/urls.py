from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from peer.views import MeView

urlpatterns = [
    path("api-token-auth/", obtain_auth_token),
    path("me", MeView.as_view()),
]
