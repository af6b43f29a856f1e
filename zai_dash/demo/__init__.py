"""The built-in demo and the writers it is made of: each tool's real on-disk format, one module per tool.

`app` runs `zai-dash --demo` (a simulated session written into a temp dir, the real engine and TUI over it);
`history` lays down its past; `claude_code`, `cline`, `droid`, `opencode`, `crush` and `goose` write each
tool's files the way the tool does. The tests and the benchmarks use the same writers, so each format is
written down once.
"""
