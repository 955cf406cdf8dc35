"""Users: one row per person per realm, with a password hash and an API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import CharField, Value
from django.db.models.functions import Lower
from django.utils import timezone

from keyhouse.prepared import PreparedQuery
from keyhouse.realms.models import Realm
from keyhouse.users.api_keys import generate_api_key
from keyhouse.users.password_policy import PasswordTooWeakError, check_password_strength

CharField.register_lookup(Lower)


class Role(models.IntegerChoices):
    """Zulip's role numbers."""

    OWNER = 100, "owner"
    ADMINISTRATOR = 200, "admin"
    MODERATOR = 300, "moderator"
    MEMBER = 400, "member"
    GUEST = 600, "guest"


class UserManager(BaseUserManager["User"]):
    def with_email(self, email: str) -> models.QuerySet[User]:
        """Users in any realm whose delivery email equals ``email`` case-insensitively.

        Both sides are lower-cased by the database, so the match is consistent with
        the unique index on ``lower(delivery_email)``, which serves the lookup.
        An email with NUL matches no one without a query: PostgreSQL refuses NUL in
        text parameters with an error, where SQLite would simply find nobody.
        """
        if "\x00" in email:
            return self.none()
        return self.select_related("realm").filter(
            delivery_email__lower=Lower(Value(email.strip()))
        )

    def get_by_delivery_email(self, email: str, realm: Realm) -> User | None:
        """Zulip's get_user_by_delivery_email: a case-insensitive match within one realm.

        Inside ``lookups_remembered()`` an account found once is not looked up again.
        """
        if "\x00" in email:
            return None
        remembered = _remembered.get()
        if remembered is None:
            return _BY_EMAIL_IN_REALM.first(email.strip(), realm.id)
        key = (realm.id, email.strip())
        user = remembered.get(key)
        if user is None:
            user = _BY_EMAIL_IN_REALM.first(key[1], key[0])
            if user is not None:
                remembered[key] = user
        return user

    def all_with_email(self, email: str) -> list[User]:
        """``with_email(email)`` as a list, from a prepared query (every API-key request)."""
        if "\x00" in email:
            return []
        return _BY_EMAIL.all(email.strip())


class User(AbstractBaseUser):
    realm = models.ForeignKey(Realm, on_delete=models.CASCADE, related_name="users")
    delivery_email = models.EmailField(max_length=254)
    full_name = models.CharField(max_length=100)
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.MEMBER)
    is_active = models.BooleanField(default=True)
    is_bot = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    timezone = models.CharField(max_length=40, blank=True, default="")
    avatar_version = models.PositiveIntegerField(default=1)
    enable_login_emails = models.BooleanField(default=True)
    api_key = models.CharField(max_length=32, unique=True, default=generate_api_key)
    # Django admin access (server operators, not realm roles): `keyhouse admin create`.
    is_staff = models.BooleanField(default=False)
    is_superuser = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "delivery_email"
    EMAIL_FIELD = "delivery_email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("delivery_email"), "realm", name="users_unique_email_per_realm"
            )
        ]

    def __str__(self) -> str:
        return f"{self.delivery_email} ({self.realm})"

    def set_password(self, raw_password: str | None) -> None:
        """Zulip's rule: None means no usable password; weak ones are refused.

        This also guards re-hashing on login: a correct but weak password cannot
        be upgraded, and the login backend turns that into PASSWORD_RESET_REQUIRED.
        """
        if raw_password is None:
            self.set_unusable_password()
            return
        if not check_password_strength(raw_password):
            raise PasswordTooWeakError()
        super().set_password(raw_password)

    @property
    def is_realm_admin(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMINISTRATOR)

    # --- Django admin permissions: all or nothing, no per-model grants ---------
    def has_perm(self, perm: str, obj: object | None = None) -> bool:
        """The admin asks per model; only an active staff superuser may do anything."""
        return self.is_active and self.is_staff and self.is_superuser

    def has_perms(self, perm_list: list[str], obj: object | None = None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and self.is_staff and self.is_superuser


# The lookups every login and API request makes, compiled once per connection.
_BY_EMAIL = PreparedQuery(User, lambda email: User.objects.with_email(email).order_by("pk"), str)
_BY_EMAIL_IN_REALM = PreparedQuery(
    User,
    lambda email, realm_id: (
        User.objects.with_email(email).filter(realm_id=realm_id).order_by("pk")[:1]
    ),
    str,
    int,
)


# One sign-in asks for the account a name reaches up to three times (the login
# limit's key, the backend, the audit entry of a refusal): auth/pipeline.py makes
# them one query. Only accounts found are remembered: a name that reaches no one
# may get an account on the way (the first LDAP login creates it). Per context, so
# per request thread.
_remembered: ContextVar[dict[tuple[int, str], User] | None] = ContextVar(
    "keyhouse_remembered_users", default=None
)


@contextmanager
def lookups_remembered() -> Iterator[None]:
    """Within the block, ``get_by_delivery_email`` asks the database once per name."""
    token = _remembered.set({})
    try:
        yield
    finally:
        _remembered.reset(token)
