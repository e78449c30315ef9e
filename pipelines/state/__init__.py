"""The restricted linkage state: one DuckDB file under `state/`, and the single-writer lock."""

from __future__ import annotations

from pipelines.state.store import StateLocked, StateStore, now_utc, writer_lock

__all__ = ["StateLocked", "StateStore", "now_utc", "writer_lock"]
