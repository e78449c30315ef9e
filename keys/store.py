"""Secret storage: key files (0600, optionally passphrase-encrypted) and env vars.

Key file ``<key_dir>/<key_id>.key`` is a small JSON document (format ``pathlink-secret/1``):
``key_id``, ``fingerprint``, ``created_at``, ``kdf`` (null, or scrypt parameters and salt),
``cipher`` (null, or AES-256-GCM nonce) and either ``secret`` (plain, urlsafe base64) or
``ciphertext`` (AES-256-GCM with associated data = key id). See docs/keys.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import stat
import unicodedata
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.secret import (
    SECRET_BYTES,
    SecretError,
    SharedSecret,
    fingerprint_of,
    material_of,
    validate_key_id,
)

FILE_FORMAT = "pathlink-secret/1"
KEY_FILE_SUFFIX = ".key"
ENV_PREFIX = "PATHLINK_SECRET_"
PASSPHRASE_ENV = "PATHLINK_KEY_PASSPHRASE"  # noqa: S105 - an env var name, not a password
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAX_N = 2**20
_SALT_BYTES = 16
_NONCE_BYTES = 12
_MAX_FILE_BYTES = 64 * 1024
_B64_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class InsecureKeyFileWarning(UserWarning):
    """A key file is accessible to group or others (mode not 0600)."""


@dataclass(frozen=True)
class KeyFileInfo:
    """Public facts about a key file, readable without the passphrase."""

    path: Path
    key_id: str
    fingerprint: str
    created_at: str
    encrypted: bool
    kdf: dict[str, Any] | None


def env_var_name(key_id: str) -> str:
    """Return ``PATHLINK_SECRET_<KEY_ID upper, non-alnum -> _>`` for ``key_id``."""
    validate_key_id(key_id)
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", key_id.upper())


def key_file_path(key_dir: Path | str, key_id: str) -> Path:
    """Return ``<key_dir>/<key_id>.key`` (the key id is validated first)."""
    validate_key_id(key_id)
    return Path(key_dir) / f"{key_id}{KEY_FILE_SUFFIX}"


def encode_material(material: bytes) -> str:
    """Return urlsafe base64 of ``material`` (the env var and plain-file encoding)."""
    return base64.urlsafe_b64encode(material).decode("ascii")


def _b64decode(text: object) -> bytes:
    """Decode urlsafe base64 (padding optional); raise ``ValueError`` without echoing input."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    text = text.strip()
    if not _B64_RE.fullmatch(text):
        raise ValueError("not urlsafe base64")
    text = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not urlsafe base64") from None


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise ValueError("passphrase must be a non-empty string")
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(_passphrase_bytes(passphrase))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _document(
    material: bytes, key_id: str, passphrase: str | None, scrypt_n: int, created_at: str
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FILE_FORMAT,
        "key_id": key_id,
        "fingerprint": fingerprint_of(material),
        "created_at": created_at,
    }
    if passphrase is None:
        doc |= {"kdf": None, "cipher": None, "secret": encode_material(material)}
        return doc
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1) or scrypt_n > _SCRYPT_MAX_N:
        raise ValueError(f"scrypt n must be a power of two in [2, {_SCRYPT_MAX_N}]")
    salt = secrets.token_bytes(_SALT_BYTES)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    wrapping_key = _scrypt_key(passphrase, salt, scrypt_n, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(wrapping_key).encrypt(nonce, material, key_id.encode("utf-8"))
    doc |= {
        "kdf": {
            "name": "scrypt",
            "n": scrypt_n,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "length": 32,
            "salt": encode_material(salt),
        },
        "cipher": {"name": "aes-256-gcm", "nonce": encode_material(nonce), "aad": "key_id"},
        "ciphertext": encode_material(ciphertext),
    }
    return doc


def _atomic_write(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600 via a 0600 temp file, fsync and rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic create-if-absent
            except FileExistsError:
                raise FileExistsError(
                    f"key file {path} already exists; refusing to overwrite it "
                    "(pass overwrite=True, or use a new key id)"
                ) from None
            except OSError:  # file system without hard links
                if path.exists():
                    raise FileExistsError(f"key file {path} already exists") from None
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse directory fsync
        pass
    finally:
        os.close(dir_fd)


def write_secret_file(
    path: Path | str,
    secret: bytes,
    *,
    key_id: str,
    passphrase: str | None = None,
    overwrite: bool = False,
    scrypt_n: int = SCRYPT_N,
    created_at: str | None = None,
) -> Path:
    """Write ``secret`` to a 0600 key file atomically and return its path.

    Args:
        path: Destination, normally ``key_file_path(key_dir, key_id)``; a missing parent
            directory is created with mode 0700.
        secret: The 32 secret bytes.
        key_id: Key id recorded in the file (and the AES-GCM associated data).
        passphrase: If given, encrypt at rest (scrypt + AES-256-GCM); else store plain.
        overwrite: Replace an existing file (default: refuse with ``FileExistsError``).
        scrypt_n: scrypt cost (power of two); recorded in the file. Lower only in tests.
        created_at: ISO timestamp to record (default now, UTC); kept when rewrapping.
    """
    validate_key_id(key_id)
    material = material_of(SharedSecret(key_id, secret))  # validates the length
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"key file {path} already exists; refusing to overwrite it "
            "(pass overwrite=True, or use a new key id)"
        )
    doc = _document(material, key_id, passphrase, scrypt_n, created_at or _now())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), overwrite=overwrite)
    return path


def _read_document(path: Path) -> dict[str, Any]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SecretError(f"key file {path} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"key file {path} is not a regular file")
    if st.st_mode & 0o077:
        warnings.warn(
            f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; group/others can access "
            f"it. Run: chmod 600 {path}",
            InsecureKeyFileWarning,
            stacklevel=3,
        )
    if st.st_size > _MAX_FILE_BYTES:
        raise SecretError(f"key file {path} is too large to be a pathlink key file")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SecretError(f"key file {path} is not a pathlink key file (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise SecretError(f"key file {path} is not a {FILE_FORMAT} document")
    for field in ("key_id", "fingerprint", "created_at"):
        if not isinstance(doc.get(field), str):
            raise SecretError(f"key file {path} lacks field {field!r}")
    return doc


def read_key_file_info(path: Path | str) -> KeyFileInfo:
    """Return the public facts recorded in a key file (no passphrase, no decryption)."""
    path = Path(path)
    doc = _read_document(path)
    return KeyFileInfo(
        path=path,
        key_id=doc["key_id"],
        fingerprint=doc["fingerprint"],
        created_at=doc["created_at"],
        encrypted=doc.get("kdf") is not None,
        kdf=doc.get("kdf"),
    )


def _decrypt(doc: dict[str, Any], path: Path, key_id: str, passphrase: str | None) -> bytes:
    if passphrase is None or passphrase == "":
        raise SecretError(
            f"key file {path} for key id {key_id!r} is encrypted; pass a passphrase or set "
            f"{PASSPHRASE_ENV}"
        )
    kdf, cipher = doc.get("kdf"), doc.get("cipher")
    try:
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise ValueError("kdf")
        if not isinstance(cipher, dict) or cipher.get("name") != "aes-256-gcm":
            raise ValueError("cipher")
        n, r, p = (kdf.get(k) for k in ("n", "r", "p"))
        if not all(isinstance(v, int) for v in (n, r, p)):
            raise ValueError("kdf params")
        if n < 2 or n & (n - 1) or n > _SCRYPT_MAX_N or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError("kdf params out of range")
        salt = _b64decode(kdf.get("salt"))
        nonce = _b64decode(cipher.get("nonce"))
        ciphertext = _b64decode(doc.get("ciphertext"))
        if len(nonce) != _NONCE_BYTES or len(salt) < 8:
            raise ValueError("nonce/salt")
    except ValueError as exc:
        raise SecretError(
            f"key file {path} for key id {key_id!r} has invalid encryption fields ({exc.args[0]})"
        ) from None
    wrapping_key = _scrypt_key(passphrase, salt, n, r, p)
    try:
        return AESGCM(wrapping_key).decrypt(nonce, ciphertext, key_id.encode("utf-8"))
    except InvalidTag:
        raise SecretError(
            f"cannot decrypt key file {path} for key id {key_id!r}: wrong passphrase, "
            "or the file was altered"
        ) from None


def read_secret_file(
    path: Path | str, *, key_id: str | None = None, passphrase: str | None = None
) -> SharedSecret:
    """Read a key file and return its ``SharedSecret``.

    Args:
        path: The key file.
        key_id: Expected key id (default: the one recorded); a different recorded id is an error.
        passphrase: Needed if the file is encrypted.

    Raises:
        SecretError: Missing, malformed, undecryptable, or the recorded fingerprint disagrees
            with the material. Warns ``InsecureKeyFileWarning`` if group/others can access it.
    """
    path = Path(path)
    doc = _read_document(path)
    recorded_id = doc["key_id"]
    if key_id is not None and recorded_id != key_id:
        raise SecretError(
            f"key file {path} holds key id {recorded_id!r}, not {key_id!r}; key files must be "
            "named <key_id>.key"
        )
    try:
        validate_key_id(recorded_id)
    except ValueError as exc:
        raise SecretError(f"key file {path}: {exc}") from None
    if doc.get("kdf") is None:
        try:
            material = _b64decode(doc.get("secret"))
        except ValueError:
            raise SecretError(
                f"key file {path} for key id {recorded_id!r}: 'secret' is not urlsafe base64"
            ) from None
    else:
        material = _decrypt(doc, path, recorded_id, passphrase)
    if len(material) != SECRET_BYTES:
        raise SecretError(
            f"key file {path} for key id {recorded_id!r} does not hold {SECRET_BYTES} bytes"
        )
    secret = SharedSecret(recorded_id, material, source=f"file:{path}")
    if secret.fingerprint != doc["fingerprint"].lower():
        raise SecretError(
            f"key file {path} for key id {recorded_id!r} records fingerprint "
            f"{doc['fingerprint']} but its material has fingerprint {secret.fingerprint}; "
            "the file is corrupt or was edited"
        )
    return secret


def load_secret(
    key_id: str,
    *,
    key_dir: Path | str | None = None,
    env: Mapping[str, str] = os.environ,
    passphrase: str | None = None,
) -> SharedSecret:
    """Load the shared secret for ``key_id``.

    Order: env var ``env_var_name(key_id)`` (urlsafe base64 of 32 bytes; empty means unset),
    then ``<key_dir>/<key_id>.key``. An encrypted file's passphrase comes from ``passphrase``
    or ``env["PATHLINK_KEY_PASSPHRASE"]``.

    Raises:
        ValueError: Invalid key id.
        SecretError: Not found, malformed, wrong passphrase or fingerprint disagreement.
    """
    validate_key_id(key_id)
    var = env_var_name(key_id)
    value = env.get(var)
    if value:
        try:
            material = _b64decode(value)
        except ValueError:
            material = b""
        if len(material) != SECRET_BYTES:
            raise SecretError(
                f"env var {var} for key id {key_id!r} must be urlsafe base64 of "
                f"{SECRET_BYTES} bytes"
            )
        return SharedSecret(key_id, material, source=f"env:{var}")
    if key_dir is None:
        raise SecretError(f"no secret for key id {key_id!r}: set {var} or give a key directory")
    path = key_file_path(key_dir, key_id)
    if not path.exists():
        raise SecretError(f"no secret for key id {key_id!r}: {var} is not set and {path} is absent")
    if passphrase is None:
        passphrase = env.get(PASSPHRASE_ENV) or None
    return read_secret_file(path, key_id=key_id, passphrase=passphrase)


def rewrap_secret_file(
    path: Path | str,
    *,
    old_passphrase: str | None,
    new_passphrase: str | None,
    key_id: str | None = None,
    scrypt_n: int = SCRYPT_N,
) -> SharedSecret:
    """Re-encrypt a key file under a new passphrase (or none), in place and atomically.

    Args:
        path: The key file.
        old_passphrase: Current passphrase (ignored for a plain file).
        new_passphrase: New passphrase; ``None`` stores the secret plain (still 0600).
        key_id: Expected key id (default: the one recorded).
        scrypt_n: scrypt cost for the new wrapping.

    Returns:
        The secret (same key id, fingerprint and ``created_at``).
    """
    path = Path(path)
    secret = read_secret_file(path, key_id=key_id, passphrase=old_passphrase)
    info = read_key_file_info(path)
    write_secret_file(
        path,
        material_of(secret),
        key_id=secret.key_id,
        passphrase=new_passphrase,
        overwrite=True,
        scrypt_n=scrypt_n,
        created_at=info.created_at,
    )
    return secret
