"""Payment providers. A provider turns a top-up order into a place to pay (a redirect URL) and
turns a provider callback into a verified ``WebhookEvent``.

Providers plug in by settings: ``settings.PAYMENT_PROVIDERS`` maps a name to the dotted path
of a ``PaymentProvider`` subclass (extra ones come from the environment, see
``portal/settings.py``), and ``settings.PAYMENT_PROVIDER`` names the one new top-ups use. The
name is the provider's identity: it is stored on each order and is the last part of its
webhook URL (``/api/v1/billing/webhooks/<name>``). The built-in ``sandbox`` provider has its
own cashier page in this portal; a real one (Alipay, WeChat Pay) returns its own cashier URL.
"""

import abc
import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookEvent:
    """A verified callback: signature and freshness were checked by the provider."""

    event_id: str
    out_trade_no: str
    status: str  # "paid" | "failed"
    amount_fen: int
    currency: str
    provider_trade_no: str = ""
    payload: dict = field(default_factory=dict)


class PaymentProvider(abc.ABC):
    name: str = ""

    @abc.abstractmethod
    def checkout_url(self, *, order) -> str:
        """Where to send the developer's browser to pay ``order``."""

    @abc.abstractmethod
    def verify_webhook(self, *, headers, body: bytes, now: dt.datetime) -> WebhookEvent:
        """Check the callback's signature and timestamp and parse it; raise
        ``billing.errors.BillingError`` (signature/stale/malformed) when it is not genuine."""


def provider_paths() -> dict[str, str]:
    """{name: dotted class path} of every configured provider."""
    return dict(getattr(settings, "PAYMENT_PROVIDERS", None) or {})


def get_provider(name: str | None = None) -> PaymentProvider:
    """The configured provider (``settings.PAYMENT_PROVIDER``) or the one named; an unknown
    name is a 404 (it comes from a webhook URL), a bad class path a configuration error."""
    name = name or settings.PAYMENT_PROVIDER
    try:
        path = provider_paths()[name]
    except KeyError:
        from portal.errors import NotFound

        raise NotFound(f"Unknown payment provider {name!r}.") from None
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"PAYMENT_PROVIDERS[{name!r}]: cannot import {path!r}") from exc
    if not (isinstance(cls, type) and issubclass(cls, PaymentProvider)):
        raise ImproperlyConfigured(f"PAYMENT_PROVIDERS[{name!r}]: {path!r} is not a PaymentProvider")
    provider = cls()
    provider.name = name  # the settings key, so orders, webhook URLs and event rows agree
    return provider


def checkout_url_for(*, order) -> str | None:
    """Where "continue paying" sends the browser for a pending ``order``: its provider's own
    cashier. None when the order is final or its provider is no longer configured."""
    if order.is_final:
        return None
    if order.provider not in provider_paths():
        log.warning("top-up %s: provider %r is not configured", order.out_trade_no, order.provider)
        return None
    return get_provider(order.provider).checkout_url(order=order)


@checks.register()
def check_payment_providers(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Fail at start-up, not at the first top-up, when the providers are misconfigured."""
    found = []
    for name in provider_paths():
        try:
            get_provider(name)
        except ImproperlyConfigured as exc:
            found.append(checks.Error(str(exc), id="billing.E101"))
    if settings.PAYMENT_PROVIDER not in provider_paths():
        hint = None
        if settings.PAYMENT_PROVIDER == "sandbox":
            hint = (
                "The sandbox provider is off (PAYMENT_SANDBOX_ENABLED): configure a real provider in"
                " PAYMENT_PROVIDERS and name it in PAYMENT_PROVIDER, or enable the sandbox on a staging site."
            )
        found.append(
            checks.Error(
                f"PAYMENT_PROVIDER {settings.PAYMENT_PROVIDER!r} is not a key of PAYMENT_PROVIDERS.",
                hint=hint,
                id="billing.E102",
            )
        )
    return found
