from django.apps import AppConfig


class ObligationsConfig(AppConfig):
    name = "obligations"
    verbose_name = "Online Safety Act register"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models import CharField, IntegerField

        from obligations.bulk import AnyOf, Unsearched

        IntegerField.register_lookup(AnyOf)
        CharField.register_lookup(Unsearched)
