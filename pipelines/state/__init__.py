"""The restricted state: the linkage database, the writer lock, quarantine, recovery.

All SQL on the restricted state goes through `StateStore` (`store`); `lock` holds the
single-writer lock; `quarantine` the encrypted quarantined rows; `recovery` what a killed run
leaves behind; `audit` the append-only log of every query, export and extract.
"""

from __future__ import annotations

from pipelines.state.lock import StateLocked, writer_lock
from pipelines.state.quarantine import decrypt_quarantine, encrypt_quarantine
from pipelines.state.recovery import cleanup_interrupted, stale_temp_files
from pipelines.state.store import StateStore, now_utc

__all__ = ["StateLocked", "StateStore", "cleanup_interrupted", "decrypt_quarantine",
           "encrypt_quarantine", "now_utc", "stale_temp_files", "writer_lock"]
