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
# FEE-4.1: the sandbox cashier credits wallets at the press of a button. Production has a real
# provider (PAYMENT_PROVIDERS / PAYMENT_PROVIDER); a staging site may turn the sandbox on.
PAYMENT_SANDBOX_ENABLED = env.bool("PAYMENT_SANDBOX_ENABLED", default=False)
if not PAYMENT_SANDBOX_ENABLED:
    PAYMENT_PROVIDERS = {k: v for k, v in PAYMENT_PROVIDERS.items() if k != "sandbox"}  # noqa: F405
else:
    SANDBOX_WEBHOOK_SECRET = env("SANDBOX_WEBHOOK_SECRET")
BILLING_GATEWAY_TOKEN = env("BILLING_GATEWAY_TOKEN")
