"""Packaged data files (the tariff: plans, pools, rates, peak hours, campaigns)."""
