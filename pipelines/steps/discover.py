"""What landing/ holds: drops still to process, and drops refused before reading."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from pipelines.ingest import FileRejected, parse_drop_path, sha256_file
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


def discover(ws: Workspace, as_of: date) -> Discovery:
    """Find every drop in landing/ not yet processed; refuse what cannot be a valid drop."""
    found = Discovery()
    if not ws.landing.is_dir():
        return found
    files, found.refused = landing_files(ws.landing)
    with StateStore(ws.state_db) as state:
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
            if state.known_file(sha, ref.partner_id, ref.period, ref.dataset):
                found.unchanged += 1
                continue
            found.pending.append(PendingDrop(ref.partner_id, ref.period, ref.dataset, rel, sha))
    return found
