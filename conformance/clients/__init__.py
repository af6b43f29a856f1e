"""One driver module per real client; each defines `DRIVER`."""
