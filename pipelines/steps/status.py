"""What `pathlink status` shows: the file ledger, pending arrivals, unfinished periods, runs."""

from __future__ import annotations

from datetime import date
from typing import Any

from pipelines.state import StateStore
from pipelines.steps.discover import discover
from pipelines.steps.review import review_status
from pipelines.workspace import Workspace


def status_report(ws: Workspace, *, as_of: Any = None) -> dict[str, Any]:
    """What `pathlink status` shows: the file ledger, pending arrivals, unfinished periods, runs.

    Everything is counts, paths, hashes and versions: never a personal value.
    """
    found = discover(ws, as_of or date.today())
    fingerprints: dict[str, tuple[str, str]] = {}  # fingerprint -> (key id, role)
    for key_id in ws.key_ids:
        fingerprint = ws.fingerprint_or_none(key_id)  # a key it cannot load is not shown
        if fingerprint is not None:
            fingerprints[fingerprint] = (key_id, "current" if key_id == ws.key_id else "previous")
    current_fp = next((fp for fp, (_, role) in fingerprints.items() if role == "current"),
                      None)
    with StateStore(ws.state_db) as state:
        files = state.status()
        runs = state.runs()
        unfinished = state.unfinished_periods()
        # without the current key's fingerprint (e.g. a passphrase not set) roles are unknown
        per_key = state.records_per_key(current_fp) if current_fp else None

    def records(frame: Any) -> list[dict[str, Any]]:
        out = []
        for row in frame.to_dict(orient="records"):
            out.append({k: (None if v is None or v != v else
                            v.isoformat(sep=" ", timespec="seconds") if hasattr(v, "isoformat")
                            else v.item() if hasattr(v, "item") else v)
                        for k, v in row.items()})
        return out

    return {
        "workspace": str(ws.root),
        # clerical review: pending pairs, decisions, the accuracy estimate and its basis
        "review": review_status(ws),
        "files": records(files),
        "pending": [{"file": d.rel_path, "partner_id": d.partner_id, "period": d.period,
                     "dataset": d.dataset} for d in found.pending],
        "refused": found.refused,
        "unpublished_periods": unfinished,
        "runs": records(runs),
        "keys": {
            "current": ws.key_id,
            "previous": list(ws.previous_key_ids),
            # records per key: linked under the current key, or (after a rotation) known
            # only under an earlier key: they keep their persons but are not linked
            "records": [{"key_fingerprint": fp,
                         "key_id": fingerprints.get(fp, (None, None))[0],
                         "role": fingerprints.get(fp, (None, "retired"))[1],
                         "records": int(n), "linked": fp == current_fp}
                        for fp, n in ([] if per_key is None else zip(
                            per_key["key_fingerprint"], per_key["records"], strict=True))],
        },
    }
