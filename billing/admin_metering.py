"""Admin for catalog, prices, permissions, discounts, usage, settlement runs (Billing II)."""
