from django.urls import path

from billing import api_metering as api

urlpatterns = [
    path("gate", api.gate_view, name="gate"),
    path("usage", api.UsageIngestApi.as_view(), name="usage-ingest"),
    path("usage/daily", api.UsageDailyApi.as_view(), name="usage-daily"),
    path("apps", api.AppListApi.as_view(), name="apps"),
    path("apps/<int:app_id>/rotate-secret", api.AppRotateSecretApi.as_view(), name="app-rotate-secret"),
    path("bills", api.BillListApi.as_view(), name="bills"),
    path("bills/<int:bill_id>", api.BillDetailApi.as_view(), name="bill-detail"),
    path("catalog", api.CatalogApi.as_view(), name="catalog"),
    path("discount-policy", api.DiscountPolicyApi.as_view(), name="discount-policy"),
]
