"""Wallet, append-only ledger, top-ups, invoices, deposits (FEE-4.1, 4.3, 6.1, 6.3)."""
