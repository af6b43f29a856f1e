"""Listen addresses as written in config and on the command line (`HOST:PORT`, `[v6]:PORT`, `:PORT`).

One parser for every server zai-dash runs (the exporter, the OTLP receiver), so a value means the same in
each place and a bad one gets the same message.
"""

from __future__ import annotations


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback) → (host, port).

    Raises:
        ValueError: with a one-line reason.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"--listen {text!r}: expected [ADDRESS]:PORT")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"--listen {text!r}: expected HOST:PORT")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: port must be a number 0–65535")
    return host or "127.0.0.1", int(port)
