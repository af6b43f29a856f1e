"""Messages that cross from workers to the app. Names state a fact."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from zai_dash.domain.snapshot import Snapshot


@dataclass
class SnapshotReady(Message):
    """The engine produced a new snapshot."""

    snapshot: Snapshot

    def can_replace(self, message: Message) -> bool:
        # A burst of writes yields a burst of snapshots; only the newest matters.
        return isinstance(message, SnapshotReady)


@dataclass
class ScanFinished(Message):
    """The first scan finished (successfully or not).

    Attributes:
        snapshot: the first snapshot, or None when the scan failed.
        locations: (tool, path, exists) for every place searched, for the empty state.
        error: a one-line reason when the scan failed.
    """

    snapshot: Snapshot | None
    locations: list[tuple[str, str, bool]]
    error: str | None = None


@dataclass
class PreviewReady(Message):
    """A plan preview's snapshot was built (off the UI loop).

    Attributes:
        snapshot: the numbers under `plan`.
        plan: the previewed plan's name (None: the configured plan).
    """

    snapshot: Snapshot
    plan: str | None
