"""API catalog, prices, apps, usage, bills, settlement runs (FEE-2, 3.1, 4.2, 5.1, 6)."""
