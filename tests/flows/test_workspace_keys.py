"""The hub's key from a Prefect Secret block (flow parameters carry only the block's name)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import tomli_w

from keys import generate_secret
from pipelines.workspace import WorkspaceError, init_workspace, load_workspace


def _use_block(root: Path, block: str) -> None:
    ws = load_workspace(root)
    raw = dict(ws.raw)
    raw["workspace"] = {**raw["workspace"], "prefect_secret_block": block}
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())


def test_secret_loads_from_a_prefect_secret_block(tmp_path: Path, prefect_harness) -> None:
    from prefect.blocks.system import Secret

    material = generate_secret()
    Secret(value=base64.urlsafe_b64encode(material).decode()).save(
        "pathlink-test-key", overwrite=True)
    root = tmp_path / "w"
    init_workspace(root, ["workforce_board"], key_id="blockkey")
    _use_block(root, "pathlink-test-key")
    secret = load_workspace(root).load_secret()
    assert secret.source == "prefect-secret:pathlink-test-key"
    assert secret.subkey("token/x/v1") != load_workspace(root).load_secret().subkey("other")
    from keys import SharedSecret
    assert secret.fingerprint == SharedSecret("blockkey", material).fingerprint


def test_missing_or_bad_block_is_a_clear_error(tmp_path: Path, prefect_harness) -> None:
    from prefect.blocks.system import Secret

    Secret(value="not-a-key").save("pathlink-bad-key", overwrite=True)
    root = tmp_path / "w"
    init_workspace(root, ["workforce_board"], key_id="blockkey")
    _use_block(root, "pathlink-bad-key")
    with pytest.raises(WorkspaceError, match="32-byte") as bad:
        load_workspace(root).load_secret()
    assert "not-a-key" not in str(bad.value)
    _use_block(root, "no-such-block")
    with pytest.raises(WorkspaceError, match="not found"):
        load_workspace(root).load_secret()
