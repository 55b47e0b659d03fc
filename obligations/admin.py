"""The app's admin module, as Django's autodiscovery looks for it: every domain's admin,
imported here so its registrations and sign-in hooks take effect. Nothing else lives here."""

from obligations.access import admin as access_admin
from obligations.access import admin_otp, admin_passwords, admin_signin, admin_tokens
from obligations.assessments import admin as assessments_admin
from obligations.catalogue import admin as catalogue_admin
from obligations.notices import admin as notices_admin
from obligations.providers import admin as providers_admin
from obligations.register import admin as register_admin
from obligations.reminders import admin as reminders_admin
from obligations.reminders import admin_webhooks

__all__ = [
    "access_admin",
    "admin_otp",
    "admin_passwords",
    "admin_signin",
    "admin_tokens",
    "admin_webhooks",
    "assessments_admin",
    "catalogue_admin",
    "notices_admin",
    "providers_admin",
    "register_admin",
    "reminders_admin",
]
