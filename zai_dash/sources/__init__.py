"""Sources turn other tools' bytes into domain events. One module per tool under `tools/`."""
