"""Pi (`@mariozechner/pi-coding-agent`): session files (append-only JSONL trees) → prompts, calls, limit hits.

Where (Pi 0.73.1 `dist/config.js`, `main.js`, `docs/settings.md`): the agent dir is
`$PI_CODING_AGENT_DIR` (default `~/.pi/agent`); sessions are `<agent dir>/sessions/--<cwd>--/<time>_<uuid>.jsonl`,
or flat in `$PI_CODING_AGENT_SESSION_DIR` or the `sessionDir` of `<agent dir>/settings.json` (relative to the
agent dir). All that exist are read: sessions written under an earlier setting stay where they were.

What (seen in Pi 0.73.1 run against a recording server, `tests/fixtures/real/pi/`; `docs/session-format.md`):

- Line 1 is `{"type": "session", id, cwd, parentSession?}`; then entries `{type, id, parentId, timestamp}`.
  `/fork` and `--fork` copy the parent's entries into the new file with the same `id` and `timestamp`,
  so events are keyed on those two, never on the file: a forked history is counted once.
- Prompt: a `message` entry with `message.role == "user"`, counted once a model response in its turn
  has usage. A prompt the server refused (429: Pi writes one `stopReason: "error"` assistant entry with
  zero usage per retry; its HTTP client retries each one too) is not a billed prompt.
- Model call: an `assistant` message with usage. Pi's `usage.input` is the *uncached* part
  (pi-ai subtracts `cached_tokens` from `prompt_tokens`), so input = `input + cacheRead + cacheWrite` and
  cached = `cacheRead`. `compaction` and `branch_summary` entries (not `fromHook`) are auxiliary calls
  Pi made to write the summary; their usage is not stored (tokens 0).
- MCP: Pi has no MCP client of its own; an extension's tool result (`toolResult`, not `isError`) whose
  `toolName` names a Z.ai MCP tool is counted.
- Limit hit: an assistant entry's `errorMessage` ("429 Usage limit reached … reset at …").
- Config: `settings.json` `defaultProvider` / `defaultModel`, and that provider's `baseUrl` in
  `models.json` (Pi's built-in `zai` provider uses the Coding Plan endpoint). `apiKey` is never read out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import classify_mcp
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import CachedJson, read_json
from zai_dash.sources.jsonl_source import JsonlSource, find_jsonl
from zai_dash.sources.jsonutil import int_field, normalise_model
from zai_dash.sources.limits import limit_hit

TOOL = "pi"
AGENT_DIR_ENV = "PI_CODING_AGENT_DIR"
SESSION_DIR_ENV = "PI_CODING_AGENT_SESSION_DIR"
TOOLS = (ToolInfo(TOOL, "Pi", (AGENT_DIR_ENV, SESSION_DIR_ENV), order=100),)

BUILTIN_BASE_URLS = {"zai": "https://api.z.ai/api/coding/paas/v4"}
"""Pi's built-in providers that talk to Z.ai (pi-ai's model table)."""
SUMMARY_ENTRIES = frozenset({"compaction", "branch_summary"})


def _expand(raw: str, home: Path, relative_to: Path) -> Path:
    if raw == "~":
        return home
    if raw.startswith("~/"):
        return home / raw[2:]
    path = Path(raw)
    return path if path.is_absolute() else relative_to / path


@dataclass
class _Session:
    """What is known of one session file."""

    session: str
    model: str | None = None
    pending: UsageEvent | None = None
    """The turn's prompt, until a model response with usage bills it."""
    billed: bool = False


@dataclass(frozen=True)
class PiLocations:
    """Pi's agent dir and every session folder it may have written to."""

    agent_dir: Path
    session_dirs: tuple[Path, ...] = field(default_factory=tuple)


def pi_locations(ctx: SourceContext) -> PiLocations:
    """The agent dir (`$PI_CODING_AGENT_DIR` or `~/.pi/agent`) and the session folders, configured ones first."""
    raw = ctx.env.get(AGENT_DIR_ENV, "").strip()
    agent = _expand(raw, ctx.home, ctx.home) if raw else ctx.home / ".pi" / "agent"
    dirs: list[Path] = []
    env_dir = ctx.env.get(SESSION_DIR_ENV, "").strip()
    if env_dir:
        dirs.append(_expand(env_dir, ctx.home, Path.cwd()))
    settings = read_json(agent / "settings.json") or {}
    if isinstance(settings.get("sessionDir"), str) and settings["sessionDir"].strip():
        dirs.append(_expand(settings["sessionDir"].strip(), ctx.home, agent))
    dirs.append(agent / "sessions")
    return PiLocations(agent, tuple(ctx.with_extra_roots(TOOL, dirs)))


class PiSource(JsonlSource):
    """Pi's session files in every session folder."""

    name = TOOL
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx)
        self._where = pi_locations(ctx)
        self._files: dict[Path, _Session] = {}
        # Every snapshot asks for the configured model: parsed again only when a file changed.
        agent = self._where.agent_dir
        self._settings: CachedJson[tuple[str | None, str | None]] = CachedJson(
            agent / "settings.json", _default_model, (None, None), jsonc=True
        )
        self._base_urls: CachedJson[dict[str, str]] = CachedJson(agent / "models.json", _base_urls, {}, jsonc=True)

    def roots(self) -> list[Root]:
        """Every session folder, found or not."""
        return [Root(d, d.is_dir()) for d in self._where.session_dirs]

    def configs(self) -> dict[str, ToolConfigInfo]:
        """The default provider's model and base URL from `settings.json` and `models.json`."""
        provider, model = self._settings.get()
        if provider is None:
            return {}
        base_url = self._base_urls.get().get(provider) or BUILTIN_BASE_URLS.get(provider)
        return {
            TOOL: ToolConfigInfo(
                model=normalise_model(model),
                model_detail="settings.json defaultModel" if isinstance(model, str) else None,
                base_url=base_url,
                endpoint=classify_base_url(base_url) if base_url else None,
            )
        }

    def _discover(self) -> list[Path]:
        found: list[Path] = []
        seen: set[str] = set()
        for folder in self._where.session_dirs:
            real = os.path.realpath(folder)
            if real not in seen:  # the env, settings and default folders may be one folder
                seen.add(real)
                find_jsonl(folder, 1, self.ctx, found)  # `--<cwd>--/` folders, or flat
        return found

    def _record(self, path: Path, rec: dict[str, Any], where: str, batch: SourceBatch) -> None:
        kind = rec["type"]
        state = self._files.get(path)
        if state is None:
            stem = path.stem  # `<time>_<uuid>`, until the header says
            state = self._files[path] = _Session(session=stem.rpartition("_")[2] or stem)
        if kind == "session":
            if isinstance(rec.get("id"), str) and rec["id"]:
                state.session = rec["id"]
        elif kind == "model_change":
            state.model = normalise_model(rec.get("modelId")) or state.model
        elif kind == "message" or kind in SUMMARY_ENTRIES:
            ts = self._stamp(rec, where)
            if ts is None:
                return
            key = f"{rec.get('id')}:{rec.get('timestamp')}"
            if kind == "message":
                self._message(state, rec.get("message"), key, ts, where, batch)
            elif rec.get("fromHook") is not True:
                batch.events.append(self._event(state, EventKind.CALL, f"summary:{key}", ts, role=CallRole.AUXILIARY))

    def _event(self, state: _Session, kind: EventKind, key: str, ts: datetime, **kw: Any) -> UsageEvent:
        return UsageEvent(kind=kind, ts=ts, tool=TOOL, key=key, session=state.session, **kw)

    def _message(self, state: _Session, msg: object, key: str, ts: datetime, where: str, batch: SourceBatch) -> None:
        if not isinstance(msg, dict):
            self.skips.add("message entry without a message object", where)
            return
        role = msg.get("role")
        if role == "user":
            state.pending, state.billed = self._event(state, EventKind.PROMPT, f"prompt:{key}", ts), False
        elif role == "assistant":
            self._assistant(state, msg, key, ts, batch)
        elif role == "toolResult" and msg.get("isError") is not True and isinstance(msg.get("toolName"), str):
            service = classify_mcp(None, msg["toolName"])
            if service is not None:
                batch.events.append(self._event(state, EventKind.MCP, f"mcp:{key}", ts, service=service))

    def _assistant(self, state: _Session, msg: dict[str, Any], key: str, ts: datetime, batch: SourceBatch) -> None:
        model = normalise_model(msg.get("model")) or state.model
        if isinstance(msg.get("errorMessage"), str):
            hit = limit_hit(msg["errorMessage"], ts)
            if hit is not None:
                batch.limit_hits.append(replace(hit, tool=TOOL))
        usage = msg.get("usage")
        if not isinstance(usage, dict):
            return
        cached = int_field(usage.get("cacheRead"))
        inp = int_field(usage.get("input")) + cached + int_field(usage.get("cacheWrite"))
        out = int_field(usage.get("output"))
        if inp + out == 0:
            return  # an error or refusal: nothing was billed
        if state.pending is not None and not state.billed:
            batch.events.append(state.pending)
            state.billed = True
        batch.events.append(
            self._event(state, EventKind.CALL, f"call:{key}", ts, model=model, tokens=inp + out,
                        input_tokens=inp, output_tokens=out, cached_tokens=cached)
        )  # fmt: skip


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Pi source (one, covering every session folder)."""
    return [PiSource(ctx)]


__all__ = ["TOOLS", "PiSource", "create_sources", "pi_locations"]


def _default_model(doc: Any) -> tuple[str | None, str | None]:
    """`(defaultProvider, defaultModel)` of a `settings.json` (None where absent or not a string)."""
    if not isinstance(doc, dict):
        return None, None
    provider, model = doc.get("defaultProvider"), doc.get("defaultModel")
    return (provider if isinstance(provider, str) else None), (model if isinstance(model, str) else None)


def _base_urls(doc: Any) -> dict[str, str]:
    """Provider → `baseUrl` of a `models.json` (only that: its entries may hold API keys)."""
    providers = doc.get("providers") if isinstance(doc, dict) else None
    if not isinstance(providers, dict):
        return {}
    return {
        name: spec["baseUrl"]
        for name, spec in providers.items()
        if isinstance(spec, dict) and isinstance(spec.get("baseUrl"), str)
    }
