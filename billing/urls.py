"""HTML pages of billing: wallet side (Billing I) and metering side (Billing II)."""

from billing.urls_metering import urlpatterns as metering_urlpatterns
from billing.urls_wallet import urlpatterns as wallet_urlpatterns

app_name = "billing"
urlpatterns = [*wallet_urlpatterns, *metering_urlpatterns]
