"""The typed contexts handed down a run: loaded once, passed to every step that needs them.

Flow parameters stay paths, ids and dates (they show in the Prefect UI and cross process
boundaries to Dask workers). Each flow turns them into a `RunContext` once; each drop becomes
a `DropContext` once (its landing path parsed and its partner looked up a single time), and
the ingest steps receive that object instead of reloading the workspace and re-parsing the
path.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

from keys import SharedSecret
from linkage.normalize import ValueMemo
from pipelines.ingest.landing import DropRef, parse_drop_path
from pipelines.workspace import PartnerConfig, Workspace, load_workspace


def code_version() -> str:
    """The installed Pathlink version, recorded with every run and file."""
    return f"pathlink {version('pathlink')}"


def new_run_id(as_of: date) -> str:
    """A run id: the reporting date and 8 random hex digits."""
    return f"run-{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"


# The ValueMemo of each run whose files are being ingested in this process (run id -> memo).
# Each partner's task loads its own RunContext (it may run on a Dask worker); those that run
# here share their run's memo. It holds raw values: dropped when the period's ingest ends.
_INGEST_MEMOS: dict[str, ValueMemo] = {}


@contextlib.contextmanager
def shared_memo(run_id: str) -> Iterator[ValueMemo]:
    """While this block runs, every `RunContext` of `run_id` loaded in this process shares
    one `ValueMemo` (the partners' files of a period share many addresses and phones)."""
    memo = _INGEST_MEMOS[run_id] = ValueMemo()
    try:
        yield memo
    finally:
        _INGEST_MEMOS.pop(run_id, None)


@dataclass(frozen=True)
class RunContext:
    """One run of the monthly flow: the loaded workspace, the run id and the reporting date."""

    ws: Workspace
    run_id: str
    as_of: date
    code_version: str
    # addresses and phones this run has standardized (raw values: memory only, this run only)
    memo: ValueMemo = field(default_factory=ValueMemo, compare=False, repr=False)

    @classmethod
    def load(cls, workspace: str | Path, run_id: str, as_of: date) -> RunContext:
        """Load the workspace config once for a flow (or a Dask worker's subflow)."""
        memo = _INGEST_MEMOS.get(run_id)
        return cls(load_workspace(workspace), run_id, as_of, code_version(),
                   memo if memo is not None else ValueMemo())

    def drop(self, rel_path: str, sha256: str) -> DropContext:
        """The context of one landing file (its path parsed and its partner looked up once)."""
        ref = parse_drop_path(self.ws.landing, self.ws.landing / rel_path, as_of=self.as_of)
        return DropContext(self, ref, self.ws.partner(ref.partner_id), rel_path, sha256)


@dataclass(frozen=True)
class DropContext:
    """One partner file being ingested: where it is, whose it is, and in which run.

    Holds paths, ids and config only. The current key's secret is loaded on first use and kept
    for the drop (encoding and quarantine encryption share it); it never appears in `repr`.
    """

    run: RunContext
    ref: DropRef
    partner: PartnerConfig
    rel_path: str  # landing-relative, as discovered (the key of the run's outcomes)
    sha256: str

    @property
    def ws(self) -> Workspace:
        return self.run.ws

    @cached_property
    def secret(self) -> SharedSecret:
        """The current key (loaded once per drop, only by steps that need it)."""
        return self.ws.load_secret()


__all__ = ["DropContext", "RunContext", "code_version", "new_run_id"]
