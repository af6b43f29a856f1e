"""The live dashboard: a Textual app that renders the engine's snapshots and computes nothing itself.

Importing this package imports Textual; the CLI imports it only to start the dashboard.
"""

from __future__ import annotations
