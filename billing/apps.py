from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "计费 Billing"

    def ready(self):
        from billing import payments  # noqa: F401  (registers the payment providers' system check)
