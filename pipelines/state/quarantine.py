"""Quarantined rows, kept encrypted next to the state they belong to.

Rows that fail validation hold raw PII; they are written only as AES-256-GCM ciphertext under
a key derived from the shared secret (`quarantine/v1`), bound to the file's sha256, so the
analyst can read them back for corrections and nobody else can.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys import SharedSecret
from pipelines.workspace import Workspace

PURPOSE = "quarantine/v1"


def quarantine_path(ws: Workspace, partner_id: str, period: str, sha: str) -> Path:
    """Where a file's quarantined rows are kept: `state/quarantine/<partner>/<period>/`."""
    return ws.quarantine_dir / partner_id / period / f"{sha}.bin"


def encrypt_quarantine(ws: Workspace, quarantined: pd.DataFrame, *, partner_id: str,
                       period: str, sha: str, secret: SharedSecret | None = None) -> Path | None:
    """Write quarantined rows encrypted (AES-256-GCM, key derived from the shared secret).

    Args:
        secret: The current key, when the caller has it loaded already (default: load it).
    """
    if quarantined is None or len(quarantined) == 0:
        return None
    key = (secret or ws.load_secret()).subkey(PURPOSE)
    nonce = os.urandom(12)
    payload = quarantined.astype(str).to_json(orient="records").encode()
    blob = nonce + AESGCM(key).encrypt(nonce, payload, sha.encode())
    path = quarantine_path(ws, partner_id, period, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)
    return path


def decrypt_quarantine(ws: Workspace, path: Path, sha: str) -> pd.DataFrame:
    """Read back an encrypted quarantine file (for the analyst's corrections).

    Tries the current key, then previous keys still configured (a file written before a key
    rotation); once the old key is retired and deleted, its quarantine files stay sealed.
    """
    blob = path.read_bytes()
    ring = ws.held_secrets()
    secrets = [ring.current, *(s for k, s in ring.items() if k != ring.current.key_id)] \
        if ring is not None else [ws.load_secret()]
    for secret in secrets:
        try:
            payload = AESGCM(secret.subkey(PURPOSE)).decrypt(blob[:12], blob[12:],
                                                             sha.encode())
        except InvalidTag:
            continue
        return pd.DataFrame(json.loads(payload))
    raise InvalidTag(f"{path.name}: no configured key opens this quarantine file")
