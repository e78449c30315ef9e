"""Tests for keys/ (secret handling) and the ``pathlink keys`` CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pickle
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keys import (
    HKDF_SALT,
    InsecureKeyFileWarning,
    KeyMismatchError,
    KeyRing,
    SecretError,
    SharedSecret,
    check_fingerprint,
    env_var_name,
    generate_secret,
    hmac_sha256,
    key_file_path,
    load_secret,
    read_key_file_info,
    read_secret_file,
    rewrap_secret_file,
    write_secret_file,
)
from pipelines.cli.keys import app

REPO = Path(__file__).resolve().parents[2]
FAST_N = 2**10  # scrypt cost for tests that do not check the default
FIXED = bytes(range(32))
FIXED_FINGERPRINT = "686caf339fd557f3d72b12552870386c"
FIXED_SUBKEY_TOK = "3ed22e3746443c8da0af02464857b032ee304d302bf9511f546fe0e0d5fbc026"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PATHLINK_SECRET_") or name == "PATHLINK_KEY_PASSPHRASE":
            monkeypatch.delenv(name)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _material_forms(material: bytes) -> list[str]:
    """Textual forms key material could leak in."""
    return [
        material.hex(),
        _b64(material).rstrip("="),
        base64.b64encode(material).decode().rstrip("="),
        repr(material),
    ]


def _stdlib_hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 from stdlib hmac, independent of ``cryptography``."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


# --- HMAC: RFC 4231 test cases 1-4, 6, 7 (HMAC-SHA-256 rows) -------------------------------

RFC4231 = {
    1: (
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    2: (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    3: (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    4: (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    6: (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    7: (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size "
        b"data. The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
}


@pytest.mark.parametrize("case", sorted(RFC4231))
def test_hmac_sha256_rfc4231(case: int) -> None:
    key, data, expected = RFC4231[case]
    assert hmac_sha256(key, data).hex() == expected


def test_stdlib_hkdf_helper_matches_rfc5869_case1() -> None:
    okm = _stdlib_hkdf(b"\x0b" * 22, bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


# --- SharedSecret -----------------------------------------------------------------------------


def test_generate_secret() -> None:
    first, second = generate_secret(), generate_secret()
    assert isinstance(first, bytes) and len(first) == 32
    assert first != second


def test_subkeys_distinct_per_purpose_and_stable() -> None:
    secret = SharedSecret("hub-2025a", FIXED)
    purposes = ["tok/name_dob", "tok/ssn", "bf/first_name", "bf/last_name", "x"]
    subkeys = [secret.subkey(p) for p in purposes]
    assert all(len(k) == 32 for k in subkeys)
    assert len(set(subkeys)) == len(purposes)
    assert subkeys == [secret.subkey(p) for p in purposes]
    assert secret.subkey("tok/name_dob").hex() == FIXED_SUBKEY_TOK
    for purpose, subkey in zip(purposes, subkeys, strict=True):
        info = b"pathlink/" + purpose.encode()
        assert subkey == _stdlib_hkdf(FIXED, HKDF_SALT, info, 32)
    other = SharedSecret("hub-2025a", bytes(reversed(FIXED)))
    assert other.subkey("tok/name_dob") != secret.subkey("tok/name_dob")
    with pytest.raises(ValueError):
        secret.subkey("")


def test_fingerprint_is_public_derivation() -> None:
    secret = SharedSecret("hub-2025a", FIXED)
    assert secret.fingerprint == FIXED_FINGERPRINT
    expected = _stdlib_hkdf(FIXED, HKDF_SALT, b"pathlink/fingerprint", 16).hex()
    assert secret.fingerprint == expected
    # the fingerprint's HKDF info must not be reachable as a subkey
    with pytest.raises(ValueError, match="reserved"):
        secret.subkey("fingerprint")
    assert SharedSecret("other-id", FIXED).fingerprint == secret.fingerprint


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_subkey_stable_across_processes() -> None:
    venv_python = REPO / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    code = (
        "import sys; from keys import SharedSecret; "
        "s = SharedSecret('hub-2025a', bytes(range(32))); "
        "print(s.subkey('tok/name_dob').hex(), s.fingerprint, 'prefect' in sys.modules)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [python, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    secret = SharedSecret("hub-2025a", FIXED)
    assert out == [secret.subkey("tok/name_dob").hex(), secret.fingerprint, "False"]


def test_repr_hides_material() -> None:
    secret = SharedSecret("hub-2025a", FIXED, source="env:X")
    for text in (repr(secret), str(secret), f"{secret}", repr([secret]), repr(KeyRing([secret]))):
        assert "hub-2025a" in text
        for form in _material_forms(FIXED):
            assert form not in text
    assert not hasattr(secret, "__dict__")
    with pytest.raises(AttributeError):
        secret.key_id = "x"  # type: ignore[misc]
    restored = pickle.loads(pickle.dumps(secret))
    assert restored == secret and restored.source == "env:X"


@pytest.mark.parametrize(
    "bad", ["../x", "..", "a/b", "a\\b", "", ".hidden", "-x", "a" * 65, "a b", "é", "k\n"]
)
def test_bad_key_id_rejected(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid key id"):
        SharedSecret(bad, FIXED)
    with pytest.raises(ValueError, match="invalid key id"):
        load_secret(bad, key_dir=tmp_path, env={})
    with pytest.raises(ValueError, match="invalid key id"):
        key_file_path(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []


def test_secret_length_enforced() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SharedSecret("k", b"short")


# --- files ------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_round_trip_plain(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1")
    assert _mode(path) == 0o600
    doc = json.loads(path.read_text())
    assert doc["key_id"] == "k1" and doc["fingerprint"] == FIXED_FINGERPRINT
    assert doc["kdf"] is None and doc["created_at"]
    secret = load_secret("k1", key_dir=tmp_path, env={})
    assert secret == SharedSecret("k1", FIXED)
    assert secret.source == f"file:{path}"
    assert [p.name for p in tmp_path.iterdir()] == ["k1.key"]  # no temp files left


def test_file_round_trip_encrypted_default_cost(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1", passphrase="s3cret pw")
    assert _mode(path) == 0o600
    text = path.read_text()
    for form in _material_forms(FIXED):
        assert form not in text
    doc = json.loads(text)
    assert {k: doc["kdf"][k] for k in ("name", "n", "r", "p")} == {
        "name": "scrypt",
        "n": 2**15,
        "r": 8,
        "p": 1,
    }
    assert doc["cipher"]["name"] == "aes-256-gcm"
    info = read_key_file_info(path)
    assert info.encrypted and info.fingerprint == FIXED_FINGERPRINT
    assert load_secret("k1", key_dir=tmp_path, env={}, passphrase="s3cret pw").subkey(
        "tok/name_dob"
    ) == SharedSecret("k1", FIXED).subkey("tok/name_dob")
    env = {"PATHLINK_KEY_PASSPHRASE": "s3cret pw"}
    assert load_secret("k1", key_dir=tmp_path, env=env) == SharedSecret("k1", FIXED)


def test_wrong_passphrase_error_hides_secrets(tmp_path: Path) -> None:
    path = write_secret_file(
        tmp_path / "k1.key", FIXED, key_id="k1", passphrase="right-horse", scrypt_n=FAST_N
    )
    with pytest.raises(SecretError) as caught:
        load_secret("k1", key_dir=tmp_path, env={}, passphrase="wrong-battery")
    message = str(caught.value)
    assert "k1" in message and str(path) in message and "wrong passphrase" in message
    for leaked in ["right-horse", "wrong-battery", *_material_forms(FIXED)]:
        assert leaked not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value, KeyError)


def test_encrypted_file_needs_passphrase(tmp_path: Path) -> None:
    write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1", passphrase="pw", scrypt_n=FAST_N)
    with pytest.raises(SecretError, match="PATHLINK_KEY_PASSPHRASE"):
        load_secret("k1", key_dir=tmp_path, env={})


def test_aad_binds_key_id(tmp_path: Path) -> None:
    path = write_secret_file(
        tmp_path / "k1.key", FIXED, key_id="k1", passphrase="pw", scrypt_n=FAST_N
    )
    doc = json.loads(path.read_text())
    doc["key_id"] = "k2"
    other = tmp_path / "k2.key"
    other.write_text(json.dumps(doc))
    other.chmod(0o600)
    with pytest.raises(SecretError, match="wrong passphrase, or the file was altered"):
        load_secret("k2", key_dir=tmp_path, env={}, passphrase="pw")


def test_refuses_overwrite(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_secret_file(path, generate_secret(), key_id="k1")
    assert load_secret("k1", key_dir=tmp_path, env={}) == SharedSecret("k1", FIXED)
    new = generate_secret()
    write_secret_file(path, new, key_id="k1", overwrite=True)
    assert _mode(path) == 0o600
    assert load_secret("k1", key_dir=tmp_path, env={}) == SharedSecret("k1", new)
    assert [p.name for p in tmp_path.iterdir()] == ["k1.key"]


def test_creates_private_key_dir(tmp_path: Path) -> None:
    key_dir = tmp_path / "secrets"
    write_secret_file(key_file_path(key_dir, "k1"), FIXED, key_id="k1")
    assert key_dir.is_dir() and _mode(key_dir) & 0o077 == 0


def test_group_readable_file_warns(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_secret("k1", key_dir=tmp_path, env={})
    path.chmod(0o644)
    with pytest.warns(InsecureKeyFileWarning, match="chmod 600"):
        load_secret("k1", key_dir=tmp_path, env={})


def test_recorded_fingerprint_disagreement_is_error(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1")
    doc = json.loads(path.read_text())
    doc["secret"] = _b64(bytes(32))
    path.write_text(json.dumps(doc))
    with pytest.raises(SecretError, match="records fingerprint"):
        load_secret("k1", key_dir=tmp_path, env={})


def test_file_for_other_key_id_is_error(tmp_path: Path) -> None:
    write_secret_file(tmp_path / "k2.key", FIXED, key_id="k1")
    with pytest.raises(SecretError, match="holds key id 'k1', not 'k2'"):
        load_secret("k2", key_dir=tmp_path, env={})


def test_rewrap_keeps_secret(tmp_path: Path) -> None:
    path = write_secret_file(tmp_path / "k1.key", FIXED, key_id="k1")
    created = read_key_file_info(path).created_at
    rewrap_secret_file(path, old_passphrase=None, new_passphrase="one", scrypt_n=FAST_N)
    assert read_key_file_info(path).encrypted
    rewrap_secret_file(path, old_passphrase="one", new_passphrase="two", scrypt_n=FAST_N)
    with pytest.raises(SecretError):
        read_secret_file(path, passphrase="one")
    assert read_secret_file(path, passphrase="two") == SharedSecret("k1", FIXED)
    rewrap_secret_file(path, old_passphrase="two", new_passphrase=None)
    info = read_key_file_info(path)
    assert not info.encrypted and info.created_at == created and _mode(path) == 0o600


# --- env vars ---------------------------------------------------------------------------------


def test_env_var_name() -> None:
    assert env_var_name("hub-2025.a") == "PATHLINK_SECRET_HUB_2025_A"
    assert env_var_name("K1") == "PATHLINK_SECRET_K1"


def test_env_var_path(tmp_path: Path) -> None:
    env = {"PATHLINK_SECRET_HUB_2025A": _b64(FIXED)}
    secret = load_secret("hub-2025a", env=env)
    assert secret == SharedSecret("hub-2025a", FIXED)
    assert secret.source == "env:PATHLINK_SECRET_HUB_2025A"
    unpadded = {"PATHLINK_SECRET_HUB_2025A": _b64(FIXED).rstrip("=")}
    assert load_secret("hub-2025a", env=unpadded) == secret
    # the env var wins over a key file
    write_secret_file(tmp_path / "hub-2025a.key", generate_secret(), key_id="hub-2025a")
    assert load_secret("hub-2025a", key_dir=tmp_path, env=env) == secret


@pytest.mark.parametrize("value", ["not base64 !!", _b64(b"too short"), "AAAA" * 12])
def test_bad_env_value_error_hides_value(value: str) -> None:
    with pytest.raises(SecretError, match="PATHLINK_SECRET_K1") as caught:
        load_secret("k1", env={"PATHLINK_SECRET_K1": value})
    assert value not in str(caught.value)


def test_missing_secret_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        load_secret("k1", key_dir=tmp_path, env={})
    assert "PATHLINK_SECRET_K1" in str(caught.value)
    assert str(tmp_path / "k1.key") in str(caught.value)
    with pytest.raises(SecretError, match="PATHLINK_SECRET_K1"):
        load_secret("k1", env={})


# --- fingerprints and rotation ------------------------------------------------------------


def test_check_fingerprint() -> None:
    hub = SharedSecret("hub-2025a", FIXED)
    check_fingerprint(hub.fingerprint, hub, "batch acme/2025-01")
    other = SharedSecret("hub-2025a", generate_secret())
    with pytest.raises(KeyMismatchError) as caught:
        check_fingerprint(other.fingerprint, hub, "batch acme/2025-01")
    message = str(caught.value)
    assert message.startswith(
        f"batch acme/2025-01 was encoded under key fingerprint {other.fingerprint}"
    )
    assert hub.fingerprint in message and "docs/keys.md" in message
    assert isinstance(caught.value, SecretError)
    with pytest.raises(KeyMismatchError, match="carries no key fingerprint"):
        check_fingerprint("", hub, "batch acme/2025-02")


def test_key_ring() -> None:
    old = SharedSecret("hub-2024a", generate_secret())
    new = SharedSecret("hub-2025a", FIXED)
    ring = KeyRing([old, new])
    assert list(ring) == ["hub-2024a", "hub-2025a"] and len(ring) == 2
    assert ring.current is new and ring["hub-2024a"] is old
    assert ring.by_fingerprint(old.fingerprint) is old
    assert KeyRing([old, new], current="hub-2024a").current is old
    with pytest.raises(KeyMismatchError, match="not in this hub's key ring"):
        ring.by_fingerprint("0" * 32, "batch acme/2025-03")
    with pytest.raises(ValueError, match="same secret"):
        KeyRing([new, SharedSecret("copy", FIXED)])
    with pytest.raises(ValueError, match="duplicate"):
        KeyRing([new, SharedSecret("hub-2025a", generate_secret())])


# --- CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_generate_and_fingerprint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", "--key-dir", str(tmp_path), "--key-id", "hub-2025a"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "hub-2025a.key"
    assert _mode(path) == 0o600
    secret = read_secret_file(path)
    assert result.stdout.splitlines() == [
        "key_id: hub-2025a",
        f"fingerprint: {secret.fingerprint}",
        f"path: {path}",
    ]
    result = runner.invoke(
        app, ["fingerprint", "--key-dir", str(tmp_path), "--key-id", "hub-2025a"]
    )
    assert result.exit_code == 0, result.output
    assert f"fingerprint: {secret.fingerprint}" in result.stdout
    material = json.loads(path.read_text())["secret"]
    again = runner.invoke(app, ["generate", "--key-dir", str(tmp_path), "--key-id", "hub-2025a"])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output
    assert json.loads(path.read_text())["secret"] == material


def test_cli_encrypted_generate_fingerprint_rewrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_PW", "first-pass")
    args = ["--key-dir", str(tmp_path), "--key-id", "k1"]
    result = runner.invoke(app, ["generate", *args, "--passphrase-env", "MY_PW"])
    assert result.exit_code == 0, result.output
    assert "first-pass" not in result.output
    path = tmp_path / "k1.key"
    secret = read_secret_file(path, passphrase="first-pass")

    unverified = runner.invoke(app, ["fingerprint", *args])
    assert unverified.exit_code == 0, unverified.output
    assert f"fingerprint: {secret.fingerprint} (recorded; not verified)" in unverified.stdout
    verified = runner.invoke(app, ["fingerprint", *args, "--passphrase-env", "MY_PW"])
    assert verified.exit_code == 0 and f"fingerprint: {secret.fingerprint}\n" in verified.stdout

    monkeypatch.setenv("NEW_PW", "second-pass")
    rewrap = ["rewrap", *args, "--old-passphrase-env", "MY_PW"]
    result = runner.invoke(app, [*rewrap, "--new-passphrase-env", "NEW_PW"])
    assert result.exit_code == 0, result.output
    assert "second-pass" not in result.output and "encrypted: yes" in result.stdout
    assert read_secret_file(path, passphrase="second-pass") == secret

    wrong = runner.invoke(app, [*rewrap, "--no-passphrase"])  # MY_PW is now wrong
    assert wrong.exit_code == 1 and "wrong passphrase" in wrong.output
    assert "first-pass" not in wrong.output
    result = runner.invoke(
        app, ["rewrap", *args, "--old-passphrase-env", "NEW_PW", "--no-passphrase"]
    )
    assert result.exit_code == 0 and "encrypted: no" in result.stdout
    assert read_secret_file(path) == secret and _mode(path) == 0o600
    for output in (result.output, verified.output):
        for form in _material_forms(material_of_file(path)):
            assert form not in output


def material_of_file(path: Path) -> bytes:
    """Decode the material of a plain key file (test helper)."""
    return base64.urlsafe_b64decode(json.loads(path.read_text())["secret"])


def test_cli_errors(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["generate", "--key-dir", str(tmp_path), "--key-id", "../evil"])
    assert bad.exit_code == 1 and "invalid key id" in bad.output
    assert list(tmp_path.iterdir()) == []
    unset = runner.invoke(
        app,
        ["generate", "--key-dir", str(tmp_path), "--key-id", "k1", "--passphrase-env", "NOPE_X"],
    )
    assert unset.exit_code == 2 and "NOPE_X" in unset.output
    both = runner.invoke(app, ["rewrap", "--key-dir", str(tmp_path), "--key-id", "k1"])
    assert both.exit_code == 2
    missing = runner.invoke(app, ["fingerprint", "--key-dir", str(tmp_path), "--key-id", "k1"])
    assert missing.exit_code == 1 and "PATHLINK_SECRET_K1" in missing.output
