"""The hub's key from a Prefect Secret block (flow parameters carry only the block's name)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import tomli_w

from keys import KeyMismatchError, generate_secret, write_secret_file
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
    # the key is pinned at init: the block must hold the secret the workspace was made with
    (root / "secrets").mkdir(parents=True, mode=0o700)
    write_secret_file(root / "secrets" / "blockkey.key", material, key_id="blockkey")
    init_workspace(root, ["workforce_board"], key_id="blockkey")
    (root / "secrets" / "blockkey.key").unlink()
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


def test_a_block_holding_another_secret_is_refused(tmp_path: Path, prefect_harness) -> None:
    from prefect.blocks.system import Secret

    other = generate_secret()
    Secret(value=base64.urlsafe_b64encode(other).decode()).save("pathlink-other-key",
                                                                 overwrite=True)
    root = tmp_path / "w"
    init_workspace(root, ["workforce_board"], key_id="blockkey")
    pinned = load_workspace(root).pinned_fingerprint()
    _use_block(root, "pathlink-other-key")
    with pytest.raises(KeyMismatchError) as refused:
        load_workspace(root).load_secret()
    from keys import SharedSecret
    message = str(refused.value)
    assert "key 'blockkey'" in message and "prefect-secret:pathlink-other-key" in message
    assert pinned in message and SharedSecret("blockkey", other).fingerprint in message
