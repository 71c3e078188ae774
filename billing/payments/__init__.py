"""Payment providers. A provider turns a top-up order into a place to pay (a redirect URL) and
turns a provider callback into a verified ``WebhookEvent``. Real providers (Alipay, WeChat
Pay) plug in by adding a class here and naming it in ``settings.PAYMENT_PROVIDER``; the
built-in ``sandbox`` provider has its own cashier page in this portal.
"""

import abc
import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

PROVIDERS = {
    "sandbox": "billing.payments.sandbox.SandboxProvider",
}


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


def get_provider(name: str | None = None) -> PaymentProvider:
    """The configured provider (``settings.PAYMENT_PROVIDER``) or the one named."""
    name = name or settings.PAYMENT_PROVIDER
    try:
        path = PROVIDERS[name]
    except KeyError:
        from portal.errors import NotFound

        raise NotFound(f"Unknown payment provider {name!r}.") from None
    return import_string(path)()
