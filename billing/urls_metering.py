from django.urls import path

from billing import views_metering as views

urlpatterns = [
    path("apps/", views.app_list, name="apps"),
    path("apps/<int:app_id>/rotate/", views.app_rotate, name="app-rotate"),
    path("usage/", views.usage, name="usage"),
    path("bills/", views.bill_list, name="bills"),
    path("bills/<int:bill_id>/", views.bill_detail, name="bill"),
    path("bills/<int:bill_id>/bill.csv", views.bill_csv, name="bill-csv"),
    path("bills/<int:bill_id>/statement.pdf", views.bill_pdf, name="bill-pdf"),
    path("catalog/", views.catalog, name="catalog"),
    path("discounts/", views.discount_policy, name="discount-policy"),
]
