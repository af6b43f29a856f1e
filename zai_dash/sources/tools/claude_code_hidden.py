"""Claude Code calls the plan bills that no `assistant` record shows, estimated from what they leave.

Seen with 2.1.332 against a recording server (metering.md §4, log-formats.md §11):

- the session-title call (interactive sessions, on the haiku-slot model): an `ai-title` record, written
  again unchanged later in the session (one call; a new title is another);
- each `/compact`: a `system` `compact_boundary` record, on the session's model;
- a stream cut and retried: `api-request` records (one per attempt) with neither an answer nor an error
  between two of them.

Each estimate is an auxiliary (or, for a retry, the chain's own role) call with `origin="estimate:<why>"`.
Their tokens come from `cost-state` (session-cumulative usage per model, auxiliary models included, no
timestamp): a model no assistant record of the session used is the title model, and what the session's
other models used beyond their assistant records is the compaction's, when there is one of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.sources.base import CallTokens
from zai_dash.sources.jsonutil import int_field
from zai_dash.sources.tools.claude_code_config import clean_model

TOOL = "claude-code"


def estimate(why: str, ident: str, ts: datetime, session: str, model: str | None) -> UsageEvent:
    """A call inferred from the record it leaves, labelled `estimate:<why>`."""
    return UsageEvent(
        kind=EventKind.CALL, ts=ts, tool=TOOL, key=f"estimate:{why}:{ident}", session=session, model=model,
        role=CallRole.AUXILIARY, origin=f"estimate:{why}",
    )  # fmt: skip


def with_tokens(event: UsageEvent, tokens: CallTokens, model: str | None) -> UsageEvent:
    """`event` carrying `tokens` (and `model`, when it had none)."""
    return replace(
        event,
        model=event.model or model,
        tokens=tokens.total,
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cached_tokens=tokens.cached,
    )


def cost_state_usage(rec: Mapping[str, Any]) -> dict[str, CallTokens]:
    """`cost-state` `modelUsage` per clean model id, Anthropic-style input made cache-inclusive."""
    usage = rec.get("modelUsage")
    out: dict[str, CallTokens] = {}
    if not isinstance(usage, Mapping):
        return out
    for raw, row in usage.items():
        model = clean_model(raw)
        if model is None or not isinstance(row, Mapping):
            continue
        read = int_field(row.get("cacheReadInputTokens"))
        tokens = CallTokens(
            int_field(row.get("inputTokens")) + read + int_field(row.get("cacheCreationInputTokens")),
            int_field(row.get("outputTokens")),
            read,
        )
        out[model] = out.get(model, CallTokens()).plus(tokens)
    return out


@dataclass
class _Session:
    seen: dict[str, list[int]] = field(default_factory=dict)
    """Model → [how many calls, input, output, cached tokens] over the latest copy of every call an
    assistant record shows: sums kept as calls arrive, so the evidence costs memory per model, not per call."""
    titles: list[UsageEvent] = field(default_factory=list)
    compactions: list[UsageEvent] = field(default_factory=list)
    cost: dict[str, CallTokens] | None = None
    dirty: bool = False


class HiddenCalls:
    """Per session: the estimated calls made so far and the evidence that prices them."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}

    def _of(self, session: str) -> _Session:
        state = self._sessions.get(session)  # not setdefault: that builds a _Session for every call record
        if state is None:
            state = self._sessions[session] = _Session()
        return state

    def forget(self, session: str) -> None:
        """Drop a session's evidence (it has been quiet for hours): it then starts over, as after a restart."""
        self._sessions.pop(session, None)

    def recorded(
        self, session: str, model: str | None, tokens: CallTokens, previous: tuple[str | None, CallTokens] | None
    ) -> None:
        """A call an assistant record shows (its latest, largest copy).

        Args:
            previous: the (model, tokens) this call was last recorded with, which this copy replaces.
        """
        seen = self._of(session).seen
        if previous is not None and previous[0]:
            sums = seen[previous[0]]
            if sums[0] == 1:
                del seen[previous[0]]
            else:
                old = previous[1]
                sums[0] -= 1
                sums[1] -= old.input
                sums[2] -= old.output
                sums[3] -= old.cached
        if model:
            now = seen.get(model)
            if now is None:
                seen[model] = [1, tokens.input, tokens.output, tokens.cached]
            else:
                now[0] += 1
                now[1] += tokens.input
                now[2] += tokens.output
                now[3] += tokens.cached

    def title(self, session: str, title: object, ts: datetime) -> UsageEvent:
        """The session-title call an `ai-title` record stands for."""
        state = self._of(session)
        return self._note(state, state.titles, estimate("title", f"{session}:{title}", ts, session, None))

    def compaction(self, session: str, ident: str, ts: datetime, model: str | None) -> UsageEvent:
        """The compaction call a `compact_boundary` record stands for."""
        state = self._of(session)
        return self._note(state, state.compactions, estimate("compact", f"{session}:{ident}", ts, session, model))

    @staticmethod
    def _note(state: _Session, known: list[UsageEvent], event: UsageEvent) -> UsageEvent:
        if all(k.key != event.key for k in known):
            known.append(event)
            state.dirty = state.cost is not None
        return event

    def cost_state(self, session: str, rec: Mapping[str, Any]) -> None:
        """The session's latest cumulative usage (attributed at `flush`, once every file was read)."""
        state = self._of(session)
        state.cost = cost_state_usage(rec)
        state.dirty = True

    def flush(self) -> list[UsageEvent]:
        """The estimates whose tokens the latest `cost-state` now tells (the ledger keeps the largest)."""
        out: list[UsageEvent] = []
        for state in self._sessions.values():
            if not state.dirty or state.cost is None:
                continue
            state.dirty = False
            seen = {model: CallTokens(*sums[1:]) for model, sums in state.seen.items()}
            unseen = [m for m in state.cost if m not in seen]
            if len(state.titles) == 1 and len(unseen) == 1:
                out.append(with_tokens(state.titles[0], state.cost[unseen[0]], unseen[0]))
            if len(state.compactions) == 1:
                rest = [(m, _minus(state.cost[m], seen[m])) for m in state.cost if m in seen]
                rest = [(m, t) for m, t in rest if t.total > 0]
                if len(rest) == 1:
                    out.append(with_tokens(state.compactions[0], rest[0][1], rest[0][0]))
        return out


def _minus(a: CallTokens, b: CallTokens) -> CallTokens:
    return CallTokens(max(0, a.input - b.input), max(0, a.output - b.output), max(0, a.cached - b.cached))
