"""The named system user that tasks, commands and migrations act as."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User


def get_system_user() -> User:
    """The named user that tasks and commands act as."""
    user, _ = User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"is_active": False, "first_name": "OSA tracker", "last_name": "(system)"},
    )
    return user


def is_system_user(user: User) -> bool:
    """The named account tasks and commands act as: it cannot sign in."""
    return not user.is_active and user.get_username() == settings.SYSTEM_USERNAME
