"""API routes of billing, mounted at /api/v1/billing/."""

from billing.api_urls_metering import urlpatterns as metering_urlpatterns
from billing.api_urls_wallet import urlpatterns as wallet_urlpatterns

app_name = "billing-api"
urlpatterns = [*metering_urlpatterns, *wallet_urlpatterns]  # the gate first (hot path)
