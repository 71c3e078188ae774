"""Admin for wallets, ledger, top-ups, invoices, deposits (Billing I)."""
