"""Key guards: the pinned fingerprint checked before a run writes, and `keys retire` held back
until the overlap is bridged (docs/keys.md, "Rotation, step by step").

Counts, key ids, sources and fingerprints only: never key material.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from keys import KeyMismatchError, SecretError
from pipelines.state import StateStore
from pipelines.workspace import Workspace, WorkspaceError, pin_key


class KeyPinError(WorkspaceError):
    """A loaded secret's fingerprint is not the one the workspace pinned for its key id."""


def check_keys(ws: Workspace, *, pin_unpinned: bool = True) -> list[str]:
    """Refuse a secret whose fingerprint is not the pinned one, before anything is written.

    Every configured key whose secret this hub holds is loaded and compared with the
    fingerprint the workspace recorded when the key was created or rotated in. A key whose
    secret is not held here (every partner encodes, or a passphrase is not set) is left to
    the step that needs it. A workspace made before keys were pinned gets its current key
    pinned now (`pin_unpinned`), unless its last run recorded another fingerprint.

    Returns:
        Notes for the run's log (a key pinned at first use).

    Raises:
        KeyPinError: naming the key id, where the secret came from and both fingerprints.
    """
    notes: list[str] = []
    for key_id in ws.key_ids:
        try:
            secret = ws.load_secret(key_id)
        except KeyMismatchError as exc:
            raise KeyPinError(str(exc)) from None
        except (SecretError, WorkspaceError):
            continue  # not held at this hub: the step that needs it says so
        if ws.pinned_fingerprint(key_id) is not None or key_id != ws.key_id:
            continue
        last = None
        if ws.state_db.is_file():
            with StateStore(ws.state_db) as state:
                last = state.last_run_fingerprint()
        if last is not None and last != secret.fingerprint:
            raise KeyPinError(
                f"key '{key_id}': the secret loaded from {secret.source} has fingerprint "
                f"{secret.fingerprint}, but the last run of this workspace used {last}; "
                "nothing was written. Give the secret that matches, or pin a key on purpose "
                f"with `pathlink keys pin --workspace {ws.root} --key-id {key_id}`")
        if pin_unpinned:
            pin_key(ws.root, key_id, secret.fingerprint)
            notes.append(f"key '{key_id}' pinned to fingerprint {secret.fingerprint} (first "
                         "use; a run under another secret for this key id is refused)")
    return notes


@dataclass
class RetireCheck:
    """Whether a previous key may be retired, and what retiring it leaves unlinked."""

    key_id: str
    fingerprint: str | None
    allowed: bool
    reason: str
    bridged_periods: list[str] = field(default_factory=list)
    unbridged_partners: list[str] = field(default_factory=list)
    only_old: dict[str, int] = field(default_factory=dict)  # partner -> records left behind

    def left_behind(self) -> str:
        """What retiring leaves unlinked, in one sentence (counts only)."""
        total = sum(self.only_old.values())
        if not total:
            return "no record is known only under this key"
        per = ", ".join(f"{p}: {n}" for p, n in sorted(self.only_old.items()) if n)
        return (f"{total} records known only under key '{self.key_id}' ({per}) keep their "
                "persons but will never be linked again unless their partner sends them "
                "under the current key")


def retire_check(ws: Workspace, key_id: str) -> RetireCheck:
    """May `key_id` be retired? Only once every partner with records under it has had an
    overlap period processed under both keys, bridged (the same partner records under both)
    and published; a key nothing was ever stored under may go at once."""
    if key_id not in ws.previous_key_ids:
        what = "the current key; rotate first" if key_id == ws.key_id else "not a previous key"
        raise WorkspaceError(f"key id '{key_id}' is {what} (previous keys: "
                             f"{', '.join(ws.previous_key_ids) or 'none'})")
    old_fp = ws.fingerprint_or_none(key_id)
    new_fp = ws.fingerprint_or_none()
    if old_fp is None or new_fp is None:
        which = key_id if old_fp is None else ws.key_id
        return RetireCheck(key_id, old_fp, False,
                           f"the fingerprint of key '{which}' is neither pinned nor loadable "
                           "here, so the overlap cannot be checked")
    if not ws.state_db.is_file():
        return RetireCheck(key_id, old_fp, True, "nothing was ever stored under this key")
    with StateStore(ws.state_db) as state:
        overlap = state.key_overlap(old_fp, new_fp)
    if overlap.empty:
        return RetireCheck(key_id, old_fp, True, "nothing was ever stored under this key")
    bridged = [str(p) for p, n in zip(overlap["partner_id"], overlap["bridged"], strict=True)
               if int(n or 0) > 0]
    missing = [str(p) for p in overlap["partner_id"] if str(p) not in bridged]
    periods = sorted({q for v in overlap["published_periods"] if isinstance(v, str)
                      for q in v.split(",")})
    only_old = {str(p): int(n) for p, n in zip(overlap["partner_id"], overlap["only_old"],
                                                strict=True)}
    if missing:
        reason = (f"no overlap period processed under both '{key_id}' and '{ws.key_id}' and "
                  f"published yet for {', '.join(missing)}: each partner must send one full "
                  "extract under both keys, and a run must link and publish that period "
                  "(docs/keys.md, Rotation)")
        return RetireCheck(key_id, old_fp, False, reason, periods, missing, only_old)
    return RetireCheck(key_id, old_fp, True,
                       f"overlap bridged for every partner (period {', '.join(periods)})",
                       periods, [], only_old)


__all__ = ["KeyPinError", "RetireCheck", "check_keys", "retire_check"]
