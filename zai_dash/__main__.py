"""`python -m zai_dash` entry point."""

from zai_dash.cli import main

raise SystemExit(main())
