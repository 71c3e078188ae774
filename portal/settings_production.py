"""Production settings: the base settings with every switch that ``check --deploy`` asks for.

Secrets have no defaults here: a missing DJANGO_SECRET_KEY stops the process at start-up.
"""

from portal.settings import *  # noqa: F403
from portal.settings import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET")
BILLING_GATEWAY_TOKEN = env("BILLING_GATEWAY_TOKEN")
