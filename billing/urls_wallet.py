from django.urls import path

from billing import views_wallet as views

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/ledger.csv", views.ledger_csv, name="ledger-csv"),
    path("top-up/", views.top_up, name="top-up"),
    path("top-ups/", views.top_up_list, name="top-up-list"),
    path("top-up/<str:out_trade_no>/", views.top_up_result, name="top-up-result"),
    path("cashier/sandbox/<str:out_trade_no>/", views.sandbox_cashier, name="sandbox-cashier"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice"),
    path("invoices/<int:invoice_id>/pdf", views.invoice_pdf, name="invoice-pdf"),
    path("deposit/", views.deposit, name="deposit"),
    path("deposit/closure/", views.closure_request, name="closure-request"),
]
