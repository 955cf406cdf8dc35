"""What one login costs the stores."""

from __future__ import annotations

import pytest
from django.test import Client

from keyhouse.users.models import User
from tests.conftest import PASSWORD, age
from tests.round_trips import counted

URL = "/api/v1/fetch_api_key"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("right", [True, False])
def test_explore(user: User, right: bool, no_pruning: None) -> None:
    age(user)
    client = Client()
    client.post(URL, {"username": user.delivery_email, "password": "warmup-wrong"}, REMOTE_ADDR="203.0.113.7")
    with counted() as counts:
        response = client.post(
            URL, {"username": user.delivery_email, "password": PASSWORD if right else "nope"},
            REMOTE_ADDR="203.0.113.7",
        )
    print("\n", right, response.status_code, counts.summary())
    for s in counts.statements:
        print("   ", s[:230])
    for c in counts.redis_commands:
        print("   R", c)
