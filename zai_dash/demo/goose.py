"""Goose's SQLite layout: `crates/goose/src/session/{session_manager.rs,migrations.rs}` (schema v13:
`message_id`, `provider_name`, `model_config_json`, `session_type`); `usage_ledger` as described by the
reference (newer builds, not in v13 source) [unverified].
"""

from __future__ import annotations

from zai_dash.demo.common import layout

GOOSE_DDL = layout("goose")

GOOSE_USAGE_LEDGER_DDL = layout("goose_usage_ledger")
"""Newer Goose builds (one row per provider request) [unverified: not in the v13 source read]."""
