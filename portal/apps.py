from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "门户 Portal"

    def ready(self):
        from portal import signals  # noqa: F401  (connects the receivers)
