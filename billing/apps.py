from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("计费")

    def ready(self):
        from billing import payments  # noqa: F401  (registers the payment providers' system check)
