"""The exit codes of `zai-dash` commands, in the one module that imports nothing.

`status`'s fast path (`zai_dash.statusline`) and the full commands (`zai_dash.commands.base`) both return
these; the fast path must not load the config, so the codes cannot live beside it.
"""

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_WARNING = 10
EXIT_EXHAUSTED = 11
EXIT_NO_DATA = 20
EXIT_ERROR = 30
