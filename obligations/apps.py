from django.apps import AppConfig


class ObligationsConfig(AppConfig):
    name = "obligations"
    verbose_name = "Online Safety Act register"
    default_auto_field = "django.db.models.BigAutoField"
