"""One settings module, driven by environment variables (as healthchecks does).

With nothing set it runs locally: SQLite under var/, the file-system Celery
broker, e-mail to files. Production sets TRACKER_ENV=production plus
SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL, and refuses to start
without them (README, "Deploying"). Its DATABASE_URL logs in as a role that owns
no table; the migrate step alone is given the owner's (README, "Database roles").

Every variable is read through `env` (tracker/env.py): a malformed one stops the
process at start-up with one line naming it. Nothing here writes to disk, so the
settings load on a read-only file system; local folders are made by the app when it
uses them (obligations/apps.py).
"""

import os
import re
from pathlib import Path

import dj_database_url

from tracker.env import Env
from tracker.logs import logging_config
from tracker.sentry import start_error_tracking
from tracker.storage import evidence_s3_storage

env = Env(os.environ)

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state (SQLite, evidence, broker, mail, the development signing key) lives here.
VAR_DIR = Path(env.str("TRACKER_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env.choice("TRACKER_ENV", "development", ("development", "production")) == (
    "production"
)
DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    # Debug pages show settings, code and data to whoever triggers an error.
    env.refuse("DEBUG must be off when TRACKER_ENV=production")

SECRET_KEY = env.str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        env.refuse("SECRET_KEY must be set when TRACKER_ENV=production")
    # Local and test use only; production refuses to start without its own key.
    SECRET_KEY = "django-insecure-local-development-key-not-for-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
if PRODUCTION and not ALLOWED_HOSTS:
    env.refuse("ALLOWED_HOSTS must name the site's host names when TRACKER_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env.str("SITE_URL", "http://127.0.0.1:8000")
if PRODUCTION and not env.str("SITE_URL"):
    # Reminder and password-reset links would point at a laptop's address.
    env.refuse("SITE_URL must be set when TRACKER_ENV=production (e.g. https://osa.example.org)")
elif not re.fullmatch(r"https?://[^/\s]+(/\S*)?", SITE_URL):
    env.refuse(f"SITE_URL must be the site's address, http(s)://host, not {SITE_URL!r}")

INSTALLED_APPS = [
    # django.contrib.admin, with the home page grouped for people (obligations/adminsite.py).
    "obligations.adminsite.TrackerAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "simple_history",
    "django_celery_beat",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "health_check",
    # django-otp's apps come before ours, whose admin replaces its device admin
    # (access/admin_otp.py).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "obligations",
]

MIDDLEWARE = [
    "tracker.requestid.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "obligations.access.admin_otp.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tracker.csp.ContentSecurityPolicyMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "tracker.urls"
WSGI_APPLICATION = "tracker.wsgi.application"
ASGI_APPLICATION = "tracker.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tracker" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "obligations.access.admin_sso.single_sign_on",
            ],
        },
    },
]

DATABASE_URL = env.str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tracker.sqlite3'}")
try:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env.int("DB_CONN_MAX_AGE", 60, minimum=0, maximum=24 * 60 * 60),
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    env.refuse(f"DATABASE_URL is not a database URL this tracker knows ({exc})")
    DATABASES = {"default": dj_database_url.parse("sqlite://:memory:")}
SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if PRODUCTION and SQLITE and not env.bool("ALLOW_SQLITE_IN_PRODUCTION"):
    # One file on one machine: no second web process, no backups while it runs, no roles.
    env.refuse(
        "TRACKER_ENV=production needs DATABASE_URL to name a PostgreSQL database, not SQLite "
        "(set ALLOW_SQLITE_IN_PRODUCTION=1 to run on SQLite anyway)"
    )
if SQLITE:
    # WAL lets the web server, worker and beat share one SQLite file on a laptop.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a Celery worker started by a test sees the test's data.
    # One file per test run (by process id), so that two runs never share it. The tests keep
    # it in memory until the first test that commits, which copies it here (tests/conftest.py).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
elif not env.bool("DATABASE_JIT"):
    # PostgreSQL compiles a query to machine code once its estimated cost passes
    # jit_above_cost. The whole register's correlated subqueries estimate high, and compiling
    # cost more than it saved: the 100,000-row CSV export took 2.44 s with JIT, 2.05 s without.
    # DATABASE_JIT=true leaves it to the server (e.g. behind a pooler that refuses options).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["tracker.formats"]
# Deadlines are calendar dates in Europe/London; datetimes are stored in UTC.
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic` writes here (at image build time in a container); WhiteNoise serves it.
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # Evidence is private: never under a public URL (served by an authorised view).
        "OPTIONS": {"location": VAR_DIR / "evidence", "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Evidence in object storage (README, "Evidence in object storage"): with EVIDENCE_S3_BUCKET set,
# evidence goes to that private bucket instead of VAR_DIR/evidence (tracker/storage.py).
STORAGES["default"] = evidence_s3_storage(env) or STORAGES["default"]

LOGIN_URL = "admin:login"

# Sign-in throttling (services.check_sign_in_allowed), counted from the access log: this many
# failures for one name from one address, or for any names from one address, pause sign-in
# (and API keys from that address) for the lockout. Behind reverse proxies, TRUSTED_PROXIES
# says how many, so that the client's address is read from X-Forwarded-For, not the proxy's.
SIGN_IN_FAILURES_PER_NAME = env.int("SIGN_IN_FAILURES_PER_NAME", 5, minimum=1, maximum=1000)
SIGN_IN_FAILURES_PER_ADDRESS = env.int(
    "SIGN_IN_FAILURES_PER_ADDRESS", 30, minimum=1, maximum=100000
)
SIGN_IN_LOCKOUT_MINUTES = env.int("SIGN_IN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60)
TRUSTED_PROXIES = env.int("TRUSTED_PROXIES", 0, minimum=0, maximum=10)

# Two-factor, password reset, lockouts and access-log retention (README, "Roles and security").
# On: operators and organisation admins without a confirmed device are kept on the enrolment
# page until they have one. Sign-ins that are not by password (single sign-on) count as verified.
OTP_REQUIRED_FOR_ADMINS = env.bool("OTP_REQUIRED_FOR_ADMINS", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", "OSA tracker")
# Reset mails for one address per hour (more are recorded, not sent).
PASSWORD_RESETS_PER_HOUR = env.int("PASSWORD_RESETS_PER_HOUR", 3, minimum=1, maximum=100)
# Access-log rows older than this many days are removed nightly; 0 keeps them for ever. At
# least 30 (the database function refuses to remove newer rows), at most 100 years.
ACCESS_LOG_RETENTION_DAYS = env.int("ACCESS_LOG_RETENTION_DAYS", 730, minimum=0, maximum=36500)
if 0 < ACCESS_LOG_RETENTION_DAYS < 30:
    env.refuse(
        "ACCESS_LOG_RETENTION_DAYS must be 0 (keep for ever) or 30 to 36500, "
        f"not {ACCESS_LOG_RETENTION_DAYS}"
    )

# Content Security Policy (tracker.csp): nothing inline runs anywhere, Swagger UI included
# (its start-up script is served from /api/docs/?script); styles come from our own files or
# a <style> carrying the request's nonce. The admin and the browsable API use style
# attributes, so under these prefixes (only) inline styles are allowed, never scripts.
CSP_INLINE_STYLE_PREFIXES = ("/admin/", "/api/")

# Evidence uploads: hashed as they stream in, refused past the size limit or outside the
# allow-list (content type from the name, checked against the first bytes where it can be).
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", 50 * 1024 * 1024, minimum=1, maximum=2**40)
EVIDENCE_CONTENT_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "text/plain",
    "text/csv",
    "application/json",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
}
FILE_UPLOAD_HANDLERS = ["obligations.register.uploads.HashingUploadHandler"]
# The largest register file an import reads (admin upload or command), in bytes; the admin
# stops receiving at this size. Rows, columns and cell length have fixed limits (importer.py).
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", 5 * 1024 * 1024, minimum=1, maximum=2**31)
# Uploads beyond this are refused by the handler with a clear message, not a 400 page.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# History is a record, not an undo button.
SIMPLE_HISTORY_REVERT_DISABLED = True

# E-mail: SMTP from the environment in production, files locally.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env.str("EMAIL_HOST", "localhost")
EMAIL_PORT = env.int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    env.refuse("EMAIL_USE_TLS and EMAIL_USE_SSL are two ways of encrypting: set one of them")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "osa-tracker@localhost")
# Each wait on the mail server (connect, send) ends within this many seconds, so that a stuck
# server cannot hang a worker, and one digest is sent well within its delivery run's lease
# (REMINDER_CLAIM_LEASE_SECONDS).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)

# Celery: Redis when REDIS_URL is set; otherwise kombu's file-system transport,
# so a laptop runs a real worker and beat with no server to install.
REDIS_URL = env.str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    # Not quoted back: the URL may hold a password.
    env.refuse("REDIS_URL must begin redis://, rediss:// or unix://")
if PRODUCTION and not REDIS_URL and not env.bool("ALLOW_FILESYSTEM_BROKER_IN_PRODUCTION"):
    # The file-system broker is one folder on one machine: workers elsewhere never see it.
    env.refuse(
        "TRACKER_ENV=production needs REDIS_URL for Celery, not the file-system broker "
        "(set ALLOW_FILESYSTEM_BROKER_IN_PRODUCTION=1 to use it anyway)"
    )
CELERY_BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
# Short timeouts: with the broker down, a web request that enqueues gives up in seconds
# (and its save has already committed); it never hangs.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# Every task ends within this (the prefork pool, the worker's default, kills one that does not;
# a --pool=solo worker cannot). The daily sweep over 100,000 cycles took 45 s at its slowest
# (README, Benchmarks): a task that needs longer raises this and the visibility timeout.
CELERY_TASK_TIME_LIMIT = 10 * 60
# The longest a task waits before a retry (obligations/tasks.py): beyond that, beat's delivery
# every 5 minutes has already done what the retry would.
TASK_RETRY_MAX_DELAY = 5 * 60
# Tasks are acknowledged when they end (tracker/celery.py). A worker killed outright (SIGKILL,
# out of memory, a reboot) leaves its task unacknowledged, and Redis hands it to another worker
# after this many seconds (kombu looks about every 100 s). It outlasts the longest a task stays
# unacknowledged (a retry's wait, then the time limit), so a task still running is never started
# twice. (A pool process that dies returns its task to the queue at once: reject on worker
# lost.) The file-system broker of a laptop deletes a message as a worker takes it: there, a
# task killed outright is lost, but not its outbox rows, which beat's delivery sends once their
# lease lapses; cycles a killed sweep had not decided wait for the next day's sweep (or
# `manage.py send_reminders`).
REDIS_VISIBILITY_TIMEOUT = TASK_RETRY_MAX_DELAY + CELERY_TASK_TIME_LIMIT + 5 * 60
CELERY_REDIS_TRANSPORT_OPTIONS: dict[str, object] = {
    "socket_timeout": 3,
    "socket_connect_timeout": 3,
    # A publisher tries twice, then gives up (the caller logs it; beat's delivery catches
    # up). The worker's own reconnection is governed by broker_connection_retry, not by these.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
    "visibility_timeout": REDIS_VISIBILITY_TIMEOUT,
}
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object]
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = CELERY_REDIS_TRANSPORT_OPTIONS
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_IGNORE_RESULT = True
# Beat's schedule lives in the database, so staff see and change it in the admin.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The first time of the daily reminder sweep (Europe/London); change it in the admin after.
REMINDER_SWEEP_AT = env.str("REMINDER_SWEEP_AT", "07:00")
if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", REMINDER_SWEEP_AT):
    env.refuse(f"REMINDER_SWEEP_AT must be a time of day as HH:MM, not {REMINDER_SWEEP_AT!r}")
# Beat delivers the outbox this often (set at the first migrate; change it in the admin after).
REMINDER_DELIVERY_EVERY_MINUTES = 5
# A delivery run's claim on outbox rows lapses after this unless the run renews it, and the next
# delivery run takes the rows over (obligations/reminders.py: the lease, the duplicate window).
REMINDER_CLAIM_LEASE_SECONDS = env.int("REMINDER_CLAIM_LEASE_SECONDS", 120, minimum=1, maximum=3600)
# A digest lists this many items per section and counts the rest (all are in the admin).
REMINDER_DIGEST_MAX_ITEMS = env.int("REMINDER_DIGEST_MAX_ITEMS", 100, minimum=1, maximum=1_000_000)
# Team chat webhooks (obligations/reminders/webhooks.py). Each POST waits this long at most, so
# a stuck receiver cannot hold a delivery run past its lease.
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1, maximum=30)
# A delivery that failed this many times in a way worth retrying (5xx, 429, timeout, no
# connection) is given up and shown as failed in the admin.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1, maximum=20)
# A receiver's Retry-After is obeyed up to this many seconds.
WEBHOOK_RETRY_AFTER_MAX_SECONDS = 60 * 60
# Plain http is accepted only to this machine's own address (127.0.0.1, ::1, localhost), and
# only when debugging or under the tests; everywhere else a webhook address must be https.
WEBHOOK_ALLOW_LOOPBACK_HTTP = DEBUG
# Webhook addresses and signing secrets are stored encrypted (Fernet). With this unset the key is
# derived from SECRET_KEY, so changing SECRET_KEY makes them unreadable (each must then be
# entered again). Set it to one or more Fernet keys, comma-separated: the first encrypts, every
# one decrypts, so a new key goes first and the old one stays until `manage.py
# reencrypt_webhooks` has run.
NOTIFICATION_ENCRYPTION_KEYS = env.list("NOTIFICATION_ENCRYPTION_KEY")
if not all(re.fullmatch(r"[A-Za-z0-9_-]{43}=", key) for key in NOTIFICATION_ENCRYPTION_KEYS):
    # Not quoted back: it is a secret.
    env.refuse(
        "NOTIFICATION_ENCRYPTION_KEY must be Fernet keys (44 characters of URL-safe base64 "
        "each), comma-separated"
    )

# The REST API: session auth for the browsable API, hashed tokens for scripts; every list
# filtered strictly (an unknown parameter is a 400), paginated by cursor (no OFFSET scans).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "obligations.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["obligations.api.auth.TrackerAccess"],
    "DEFAULT_FILTER_BACKENDS": ["obligations.api.filters.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "obligations.api.pagination.Cursor",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "obligations.api.errors.handle",
    # DRF's three, the JSON one holding nesting to a sane depth.
    "DEFAULT_PARSER_CLASSES": [
        "obligations.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OSA obligations tracker API",
    "DESCRIPTION": "The Online Safety Act 2023 register: services, obligations, evidence, "
    "Ofcom notices, risk assessments and Codes measures. Send `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package: served locally, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Audit packs are signed with an Ed25519 private key (PEM, PKCS8): the key itself, or the path
# of a file holding it. With neither, development makes one in VAR_DIR on first use; production
# refuses to sign (checked when a pack is made, so that `check --deploy` needs no key).
AUDIT_PACK_SIGNING_KEY = env.str("AUDIT_PACK_SIGNING_KEY", single_line=False)
AUDIT_PACK_SIGNING_KEY_FILE = env.str("AUDIT_PACK_SIGNING_KEY_FILE")

# The catalogue the tracker loads by default.
CATALOGUE_PATH = BASE_DIR / "fixtures" / "osa-catalogue.json"
# The named user that tasks and commands act as.
SYSTEM_USERNAME = "osa-tracker-system"

# Single sign-on through an OpenID Connect identity provider (README, "Single sign-on";
# obligations/access/sso.py), on only when OIDC_RP_CLIENT_ID is set: then the secret, the
# issuer and its endpoints are required, and the admin's sign-in page offers it beside the
# password form. mozilla-django-oidc reads these settings on each request.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", "single sign-on")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", "groups")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", "openid email profile")
# RFC 8176 methods that count as a second factor where two-factor is required of
# administrators (OTP_REQUIRED_FOR_ADMINS): "mfa" is what most providers send.
OIDC_SECOND_FACTOR_AMR = env.list(
    "OIDC_SECOND_FACTOR_AMR", "mfa,otp,hwk,swk,sc,sms,tel,fpt,face,iris,retina,pop"
)
# A session signed in through the provider lasts this long; then the person signs in again
# and their memberships follow the provider's groups.
SSO_SESSION_HOURS = env.int("SSO_SESSION_HOURS", 8, minimum=1, maximum=24 * 30)
OIDC_RP_SIGN_ALGO = "RS256"  # ID tokens signed with the provider's key, read from its JWKS
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10  # seconds for each call to the provider: a sign-in never hangs
LOGIN_REDIRECT_URL = "/admin/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"  # where a refusal's message is shown
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_RP_CLIENT_ID:
    for _name in (
        "OIDC_RP_CLIENT_SECRET",
        "OIDC_OP_ISSUER",
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
        "OIDC_OP_JWKS_ENDPOINT",
    ):
        if not globals()[_name]:
            env.refuse(f"{_name} must be set when OIDC_RP_CLIENT_ID is (single sign-on)")
    AUTHENTICATION_BACKENDS.append("obligations.access.sso.OidcBackend")

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int(
        "SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0, maximum=2 * 60 * 60 * 24 * 365
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading commits the whole domain to HTTPS for browsers for months: the operator
        # opts in with SECURE_HSTS_PRELOAD=1, so its absence is a decision, not an oversight.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # The probes of the load balancer and the container speak plain HTTP to the process.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Logs go to standard error, one JSON object a line in production (time, level, logger,
# message, request_id) for a log collector; plain text on a laptop. tracker/logs.py.
LOGGING = logging_config(
    json=env.choice("LOG_FORMAT", "json" if PRODUCTION else "text", ("json", "text")) == "json",
    level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
)

# Errors to Sentry (or a Sentry-compatible service such as GlitchTip) when a DSN is given:
# no personal data is sent (tracker/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", "production" if PRODUCTION else "development")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0, maximum=1)

# /health/ (obligations/operations/health.py): beat queues a heartbeat task this often; a
# heartbeat older than twice this means beat (or every worker) has stopped.
BEAT_HEARTBEAT_SECONDS = 60

env.check()
if SENTRY_DSN:
    start_error_tracking(SENTRY_DSN, SENTRY_ENVIRONMENT, SENTRY_TRACES_SAMPLE_RATE)
