"""Reading other tools' config files: JSON, JSONC and a flat YAML subset, keeping no secrets.

Only what zai-dash needs is returned (model ids, base URLs, MCP server URLs and commands). MCP
`headers` and `env`, API keys and tokens are never copied out of the parsed document, and the raw text is
dropped as soon as it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from zai_dash.domain.mcp import mcp_targets
from zai_dash.safeio import CONFIG_MAX_BYTES, UnsafeFile, read_capped
from zai_dash.sources.base import Skips
from zai_dash.sources.jsonutil import loads
from zai_dash.sources.stamp import FileStamp, file_stamp

T = TypeVar("T")

__all__ = [
    "MAX_CONFIG_BYTES",
    "CachedJson",
    "first_existing",
    "kept_entries",
    "mcp_targets",
    "parse_yaml_lite",
    "read_json",
    "read_yaml_lite",
    "strip_jsonc",
]

MAX_CONFIG_BYTES = CONFIG_MAX_BYTES
"""Config files larger than this are not read."""


def _read_text(path: Path) -> str | None:
    try:
        return read_capped(path, MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
    except OSError:  # missing, unreadable, or not a regular file of a sane size (safeio)
        return None


_JSONC_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.S)


def strip_jsonc(text: str) -> str:
    """Remove `//` and `/* */` comments and trailing commas, leaving strings intact."""

    def keep(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token.startswith('"') else ""

    return _JSONC_TOKEN.sub(keep, text)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON or JSONC object from `path`, or None when missing, unreadable, invalid or not an object."""
    text = _read_text(path)
    if text is None:
        return None
    for candidate in (text, strip_jsonc(text)):
        try:
            data = loads(candidate)
        except ValueError:
            continue
        return data if isinstance(data, dict) else None
    return None


class CachedJson(Generic[T]):
    """One JSON (or JSONC) file, re-parsed only when its stamp (inode, size, mtime) changes.

    The one cached reader for other tools' config files: an unchanged file costs a stat, not a read,
    so a reader polled on every wake-up (or every snapshot) does not open it again.

    Args:
        path: the file.
        extract: picks what we need out of the parsed document; only its result is kept (the document,
            and any secret in it, is dropped at once).
        empty: the value when the file is absent or unusable.
        skips: where a broken file is counted (once per change of the file); None: not counted.
        jsonc: accept comments and trailing commas (tools whose config files allow them).
        parse: another format's parser (TOML, the YAML subset), raising `ValueError` on a broken file:
            the same stamp rule for every config file a source asks for again and again.
    """

    def __init__(
        self,
        path: Path,
        extract: Callable[[Any], T],
        empty: T,
        skips: Skips | None = None,
        jsonc: bool = False,
        parse: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.path = path
        self._extract = extract
        self._empty = empty
        self._skips = skips
        self._jsonc = jsonc
        self._parse = parse
        self._stamp: FileStamp | None = None
        self.value: T = empty
        self.version = 0
        """Bumped whenever `value` is replaced, so dependants can tell cheaply."""

    def get(self) -> T:
        """The extracted value, refreshed if the file changed since the last call."""
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return self.value
        self._stamp = stamp
        self.value = self._empty
        self.version += 1
        if stamp is None:
            return self.value
        try:
            raw = read_capped(self.path, MAX_CONFIG_BYTES)
        except UnsafeFile as exc:  # a FIFO would block, /dev/zero would never end
            self._skip(exc.reason, file=True)
            return self.value
        except OSError as exc:
            self._skip(f"unreadable file ({exc.strerror})", file=True)
            return self.value
        try:
            doc = loads(raw) if self._parse is None else self._parse(raw)
        except ValueError:
            doc = _jsonc(raw) if self._jsonc else None
            if doc is None:
                # A torn write is retried naturally: the next write changes the stamp.
                self._skip("malformed JSON in config file" if self._parse is None else "malformed config file")
                return self.value
        self.value = self._extract(doc)
        return self.value

    def _skip(self, reason: str, file: bool = False) -> None:
        if self._skips is None:
            return
        if file:
            self._skips.add_file(reason, str(self.path))
        else:
            self._skips.add(reason, str(self.path))


def kept_entries(entries: object, keys: Iterable[str]) -> dict[str, dict[str, Any]] | None:
    """A map of named entries (MCP servers, models, providers) cut down to `keys`; None when not a map.

    Config subsets are cached past the parse, so each entry keeps only the keys named here: an entry's
    `headers`, `env` or `api_key` never survive. Entries that are not maps are dropped.
    """
    if not isinstance(entries, Mapping):
        return None
    keep = tuple(keys)
    return {
        name: {k: entry[k] for k in keep if k in entry} for name, entry in entries.items() if isinstance(entry, Mapping)
    }


def _jsonc(raw: bytes) -> Any | None:
    """A JSONC document's value, or None when it is not valid even without comments and trailing commas."""
    try:
        return loads(strip_jsonc(raw.decode("utf-8", errors="replace")))
    except ValueError:
        return None


def first_existing(paths: list[Path]) -> Path | None:
    """The first path that is a file."""
    for path in paths:
        if path.is_file():
            return path
    return None


_YAML_KEY = re.compile(r"^(?P<indent> *)(?P<key>\"[^\"]*\"|'[^']*'|[^\s:#'\"][^:#]*?)\s*:(?:\s+(?P<value>.*))?$")


def _yaml_scalar(raw: str) -> str | list[str] | None:
    text = raw.strip()
    if not text or text.startswith(("|", ">", "&", "*")):
        return None
    if text.startswith("[") and text.endswith("]"):
        return [str(s) for s in (_yaml_scalar(p) for p in text[1:-1].split(",")) if isinstance(s, str)]
    if text[0] in "\"'":
        quote = text[0]
        end = text.find(quote, 1)
        return text[1:end] if end > 0 else text[1:]
    # An unquoted scalar ends at a comment.
    return re.split(r"\s+#", text, maxsplit=1)[0].strip() or None


def read_yaml_lite(path: Path, max_depth: int = 3) -> dict[str, Any] | None:
    """A small YAML subset: nested block mappings of scalars, flow lists and `- item` lists.

    Enough for Goose's `config.yaml` (`GOOSE_PROVIDER`, `GOOSE_MODEL`, `extensions: {key: {uri|cmd, args}}`)
    without a PyYAML dependency. Anything it does not understand is skipped, never raised.

    Returns:
        The mapping, or None when the file is missing or unreadable.
    """
    text = _read_text(path)
    return None if text is None else parse_yaml_lite(text, max_depth)


def parse_yaml_lite(text: str, max_depth: int = 3) -> dict[str, Any]:
    """The mapping `read_yaml_lite` reads, from the file's text."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    last_key: tuple[int, dict[str, Any], str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if stripped.startswith("- "):
            # A block list item under the last key that had no inline value.
            if last_key is not None and indent >= last_key[0]:
                _, parent, key = last_key
                item = _yaml_scalar(stripped[2:])
                existing = parent.get(key)
                if not isinstance(existing, list):
                    existing = parent[key] = []
                if isinstance(item, str):
                    existing.append(item)
            continue
        match = _YAML_KEY.match(line)
        if match is None:
            continue
        key = match.group("key").strip("\"'")
        while stack and indent <= stack[-1][0]:
            stack.pop()
        if not stack:
            stack = [(-1, root)]
        parent = stack[-1][1]
        value = match.group("value")
        if value is None or not value.strip() or value.strip().startswith("#"):
            if len(stack) <= max_depth:
                child: dict[str, Any] = {}
                parent[key] = child
                stack.append((indent, child))
                last_key = (indent, parent, key)
            continue
        scalar = _yaml_scalar(value)
        if scalar is not None:
            parent[key] = scalar
        last_key = None
    return root
