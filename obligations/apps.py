from django.apps import AppConfig
from django.db.models import CharField, IntegerField

from obligations.bulk import AnyOf, Unsearched


class ObligationsConfig(AppConfig):
    name = "obligations"
    verbose_name = "Online Safety Act register"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        IntegerField.register_lookup(AnyOf)
        CharField.register_lookup(Unsearched)
