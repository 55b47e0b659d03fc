from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
from django.db.models import CharField, IntegerField

from obligations.bulk import AnyOf, Unsearched


class ObligationsConfig(AppConfig):
    name = "obligations"
    verbose_name = "Online Safety Act register"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        IntegerField.register_lookup(AnyOf)
        CharField.register_lookup(Unsearched)
        make_local_folders()


def make_local_folders() -> None:
    """The folders a laptop's set-up writes to, made when it uses them (not by the settings,
    which load on read-only file systems too): SQLite's, the file-system broker's, and the
    static files' (which WhiteNoise looks for). Production makes none: collectstatic made its
    static folder when the release was built."""
    folders = [] if settings.PRODUCTION else [Path(settings.STATIC_ROOT)]
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        folders.append(Path(settings.DATABASES["default"]["NAME"]).parent)
    if settings.CELERY_BROKER_URL == "filesystem://":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(str(options["data_folder_in"])), Path(str(options["control_folder"]))]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
