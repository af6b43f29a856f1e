"""Packaged data files (built-in plans)."""
