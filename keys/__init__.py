"""Pathlink keys: load the shared secret by key id, derive subkeys, HMAC, fingerprints.

Standard library and ``cryptography`` only (never prefect). See docs/keys.md.
"""

from keys.secret import (
    HKDF_SALT,
    KeyMismatchError,
    KeyRing,
    SecretError,
    SharedSecret,
    check_fingerprint,
    fingerprint_of,
    generate_secret,
    hmac_sha256,
    validate_key_id,
)
from keys.store import (
    PASSPHRASE_ENV,
    SCRYPT_N,
    InsecureKeyFileWarning,
    KeyFileInfo,
    env_var_name,
    key_file_path,
    load_secret,
    read_key_file_info,
    read_secret_file,
    rewrap_secret_file,
    write_secret_file,
)

__all__ = [
    "HKDF_SALT",
    "PASSPHRASE_ENV",
    "SCRYPT_N",
    "InsecureKeyFileWarning",
    "KeyFileInfo",
    "KeyMismatchError",
    "KeyRing",
    "SecretError",
    "SharedSecret",
    "check_fingerprint",
    "env_var_name",
    "fingerprint_of",
    "generate_secret",
    "hmac_sha256",
    "key_file_path",
    "load_secret",
    "read_key_file_info",
    "read_secret_file",
    "rewrap_secret_file",
    "validate_key_id",
    "write_secret_file",
]
