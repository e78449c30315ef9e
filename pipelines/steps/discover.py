"""What landing/ holds: drops still to process, and drops refused before reading."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from linkage.encode import load_encoding_schema
from pipelines.ingest import PERIOD_RE, FileRejected, contract_version, parse_drop_path, sha256_file
from pipelines.records import PROCESSED_DATASETS
from pipelines.state import StateStore
from pipelines.workspace import Workspace, WorkspaceError


@dataclass(frozen=True)
class PendingDrop:
    """A file in landing/ that is ready to process (flow parameters: paths and ids only)."""

    partner_id: str
    period: str
    dataset: str
    rel_path: str
    sha256: str
    why: str = "new"  # new | corrected | map_changed | contract_changed | encoding_changed |
    #                   reprocess_requested

    def as_params(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Discovery:
    """What landing/ holds: drops to process and drops refused before reading."""

    pending: list[PendingDrop] = field(default_factory=list)
    unchanged: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)


def landing_files(landing: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """Every regular file under landing/ (hidden ones left out), and a refusal for every
    symbolic link found anywhere below it: a link is never followed, so another partner's
    drop (or a file outside the workspace) cannot be passed off as this partner's."""
    files: list[Path] = []
    refused: list[dict[str, str]] = []
    for folder, dirs, names in os.walk(landing, followlinks=False):
        base = Path(folder)
        for name in sorted([*dirs, *names]):
            path = base / name
            if name.startswith("."):
                continue
            rel = path.relative_to(landing).as_posix()
            if path.is_symlink():
                refused.append({"file": rel, "reason": f"{rel}: a symbolic link; links are not "
                                "accepted under landing/ (copy the file itself)"})
            elif name in names and path.is_file():
                files.append(path)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (base / d).is_symlink())
    return sorted(files), refused


def reprocess_targets(specs: list[str] | tuple[str, ...], ws: Workspace
                      ) -> list[tuple[str, str | None]]:
    """`PARTNER` or `PARTNER/YYYY-MM` (of `run --reprocess`) as (partner, period or None).

    Raises:
        WorkspaceError: an unregistered partner or a malformed period.
    """
    out = []
    for spec in specs:
        partner, _, period = spec.partition("/")
        ws.partner(partner)
        if period and not PERIOD_RE.match(period):
            raise WorkspaceError(f"--reprocess {spec}: the period must be YYYY-MM")
        out.append((partner, period or None))
    return out


def _why(state: StateStore, ws: Workspace, ref: Any, sha: str,
         reprocess: list[tuple[str, str | None]]) -> str | None:
    """Why a landing file is to be processed, or None when it is unchanged and current."""
    entry = state.file_entry(sha, ref.partner_id, ref.period, ref.dataset)
    if entry is None:
        return "corrected" if state.current_file(ref.partner_id, ref.period, ref.dataset) \
            else "new"
    if any(p == ref.partner_id and (q is None or q == ref.period) for p, q in reprocess):
        return "reprocess_requested"
    if ref.encoded:  # read on the partner's machine: no map, no contract check here
        return None
    if entry["contract"] and entry["contract"] != contract_version(ref.dataset):
        return "contract_changed"
    if entry.get("encoding_schema") and entry["encoding_schema"] != load_encoding_schema().id:
        # stored under an earlier encoding: not comparable with the current one, so the hub
        # encodes the partner's file again (person ids carry over by record key)
        return "encoding_changed"
    recorded = entry["reading_fingerprint"]
    if recorded and recorded != ws.partner(ref.partner_id).reading_fingerprint():
        return "map_changed"
    return None


def discover(ws: Workspace, as_of: date,
             reprocess: list[tuple[str, str | None]] | None = None, *,
             state_db: Path | None = None) -> Discovery:
    """Find every drop in landing/ to process (new, corrected, read under a partner map or
    contract version that has changed since, or asked for with `reprocess`); refuse what
    cannot be a valid drop. `state_db` replaces the workspace's ledger (a dry run on a
    workspace that has none yet uses an empty one elsewhere)."""
    found = Discovery()
    if not ws.landing.is_dir():
        return found
    files, found.refused = landing_files(ws.landing)
    with StateStore(state_db or ws.state_db) as state:
        for path in files:
            rel = path.relative_to(ws.landing).as_posix()
            try:
                ref = parse_drop_path(ws.landing, path, as_of=as_of)
                ws.partner(ref.partner_id)
            except (FileRejected, WorkspaceError) as exc:
                found.refused.append({"file": rel, "reason": str(exc)})
                continue
            if ref.dataset not in PROCESSED_DATASETS:
                found.refused.append({
                    "file": rel,
                    "reason": f"{rel}: dataset '{ref.dataset}' is validated by `pathlink check` "
                              "but not yet linked or published",
                })
                continue
            sha = sha256_file(path)
            why = _why(state, ws, ref, sha, reprocess or [])
            if why is None:
                found.unchanged += 1
                continue
            found.pending.append(PendingDrop(ref.partner_id, ref.period, ref.dataset, rel, sha,
                                             why))
    return found
