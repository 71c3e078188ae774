from django.urls import path

from billing import api_wallet as api

urlpatterns = [
    path("wallet", api.WalletApi.as_view(), name="wallet"),
    path("ledger", api.LedgerListApi.as_view(), name="ledger"),
    path("top-ups", api.TopUpListCreateApi.as_view(), name="top-ups"),
    path("top-ups/<str:out_trade_no>", api.TopUpDetailApi.as_view(), name="top-up"),
    path("webhooks/<str:provider>", api.PaymentWebhookApi.as_view(), name="payment-webhook"),
    path("invoices", api.InvoiceListCreateApi.as_view(), name="invoices"),
    path("invoices/<int:invoice_id>", api.InvoiceDetailApi.as_view(), name="invoice"),
    path("invoices/<int:invoice_id>/pdf", api.InvoicePdfApi.as_view(), name="invoice-pdf"),
    path("deposit", api.DepositApi.as_view(), name="deposit"),
    path("closure-requests", api.ClosureListCreateApi.as_view(), name="closure-requests"),
]
