"""Landing paths: `landing/<partner_id>/<YYYY-MM>/<dataset>.<ext>`, checked before reading."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from data_contracts import DATASETS
from keys.secret import KEY_ID_PATTERN
from pipelines.ingest.errors import FileRejected

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
           ".parquet": "parquet"}

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

PARTNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class DropRef:
    """A validated landing path: landing/<partner_id>/<YYYY-MM>/<dataset>.<ext>."""

    partner_id: str
    period: str
    dataset: str
    path: Path
    rel_path: str = ""
    encoded: bool = False  # a partner-side encoded participants file (no raw PII)


# -- helpers ---------------------------------------------------------------------------------
def display_name(path: Path) -> str:
    """A short, non-PII name for messages: <partner>/<period>/<file> for landing drops."""
    path = Path(path)
    if PERIOD_RE.match(path.parent.name) and path.parent.parent.name:
        return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
    return path.name


# -- landing paths ---------------------------------------------------------------------------
def parse_drop_path(landing_root: Path, path: Path, *, as_of: date | None = None) -> DropRef:
    """Check a landing path: `<partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>`.

    Refuses `..`, a symbolic link anywhere below the landing folder, a period folder that is not
    YYYY-MM or lies after `as_of` (default: today), and unknown dataset names.

    Raises:
        FileRejected: with the landing-relative path and the reason.
    """
    landing = Path(landing_root).resolve()
    given = Path(path)
    candidate = given if given.is_absolute() else landing / given
    if ".." in given.parts:
        raise FileRejected(str(given), "path must not contain '..'", code="unsafe_path")
    try:
        rel = candidate.relative_to(landing)
    except ValueError:
        try:
            rel = candidate.relative_to(Path(landing_root))
        except ValueError as exc:
            raise FileRejected(given.name, "file is not inside the landing folder",
                               code="unsafe_path") from exc
    shown = rel.as_posix()
    step = Path(landing_root)
    for part in rel.parts:  # no link anywhere below landing/: never followed, never trusted
        step = step / part
        if step.is_symlink():
            raise FileRejected(shown, "a symbolic link; links are not accepted under landing/ "
                               "(copy the file itself)", code="unsafe_path")
    resolved = (landing / rel).resolve()
    if not resolved.is_relative_to(landing):
        raise FileRejected(shown, "path leaves the landing folder (symlink?)",
                           code="unsafe_path")
    if len(rel.parts) != 3:
        raise FileRejected(shown, "expected <partner_id>/<YYYY-MM>/<dataset>.<csv|xlsx|parquet>",
                           code="bad_layout")
    partner_id, period, filename = rel.parts
    if not PARTNER_RE.match(partner_id):
        raise FileRejected(shown, "partner folder name has unexpected characters",
                           code="bad_partner")
    if not PERIOD_RE.match(period):
        raise FileRejected(shown, "period folder must be YYYY-MM (e.g. 2026-01)",
                           code="bad_period")
    today = as_of or date.today()
    if period > f"{today.year:04d}-{today.month:02d}":
        raise FileRejected(shown, f"period {period} is in the future", code="future_period")
    stem, suffix = Path(filename).stem.lower(), Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise FileRejected(shown, "file type must be .csv, .xlsx or .parquet",
                           code="unsupported")
    if suffix == ".parquet" and (stem == "participants.encoded" or (
            stem.startswith("participants.encoded.")
            and KEY_ID_PATTERN.fullmatch(stem.removeprefix("participants.encoded.")))):
        # participants.encoded.<key id>.parquet: the second file of a key rotation's overlap
        # pair; the hub routes every encoded drop by the fingerprint recorded in it.
        return DropRef(partner_id, period, "participants", resolved, shown, encoded=True)
    if stem not in DATASETS:
        raise FileRejected(shown, "unknown dataset name; expected one of " + ", ".join(DATASETS),
                           code="unknown_dataset")
    return DropRef(partner_id, period, stem, resolved, shown)


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex): its identity in the ledger."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
