"""Limits and paths of one receiver (kept apart from the app so the CLI starts fast)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from focuslake.config import Paths


@dataclass(frozen=True)
class Settings:
    """Limits and paths of one receiver. Rates are per device; None switches a limit off."""

    data_root: Path
    max_segment_body: int = 16 << 20     # whole-segment PUT, encoded and decoded
    max_chunk: int = 8 << 20             # one chunk of a chunked upload
    max_segment_total: int = 1 << 30     # a chunked segment in total
    max_events_body: int = 4 << 20       # one events batch, encoded and decoded
    max_events_per_batch: int = 5000
    requests_per_s: float | None = 20.0
    request_burst: float = 100
    events_per_s: float | None = 500.0
    event_burst: float = 20_000
    events_linger_s: float = 0.0         # group commit: extra wait for more batches to join a flush
    #                                      (batches arriving while a flush runs join the next anyway)

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.data_root).resolve())

    @property
    def state_dir(self) -> Path:
        return self.paths.root / "receiver"

    @property
    def uploads(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def events_quarantine(self) -> Path:
        return self.paths.quarantine / "events"
