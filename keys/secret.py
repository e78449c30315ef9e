"""The shared secret in memory: key ids, HKDF subkeys, fingerprints, HMAC, key rings.

Derivation constants (changing any of them changes every token; see docs/keys.md):

- subkeys: HKDF-SHA256, salt ``HKDF_SALT``, info ``b"pathlink/" + purpose``, 32 bytes.
- fingerprint: HKDF-SHA256, salt ``HKDF_SALT``, info ``b"pathlink/fingerprint"``, first 16
  bytes as lowercase hex (32 characters). Public and one-way: HKDF is a PRF, so the fingerprint
  reveals nothing usable about a 256-bit random secret. The purpose ``"fingerprint"`` is
  therefore reserved and refused by ``SharedSecret.subkey``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32
SUBKEY_BYTES = 32
FINGERPRINT_BYTES = 16
HKDF_SALT = b"pathlink/hkdf-salt/v1"
INFO_PREFIX = b"pathlink/"
FINGERPRINT_PURPOSE = "fingerprint"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SecretError(KeyError):
    """A secret cannot be found, read, decrypted or trusted.

    Subclasses ``KeyError`` (a key id lookup failed), but prints its message plainly. Messages
    name key ids, files, env var names and fingerprints, never key material or passphrases.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class KeyMismatchError(SecretError):
    """Data was produced under a different key than the one at hand."""


def validate_key_id(key_id: str) -> str:
    """Return ``key_id`` if it is a safe key id, else raise ``ValueError``.

    A key id is 1-64 characters of letters, digits, ``_``, ``.`` and ``-``, starting with a
    letter or digit; it becomes a file name, so ``../x`` or ``a/b`` are refused.
    """
    if not isinstance(key_id, str) or KEY_ID_PATTERN.fullmatch(key_id) is None:
        raise ValueError(
            f"invalid key id {key_id!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (no path separators)"
        )
    return key_id


def generate_secret() -> bytes:
    """Return 32 fresh random bytes from the OS CSPRNG (``secrets``)."""
    return secrets.token_bytes(SECRET_BYTES)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return HMAC-SHA256(key, message), 32 bytes (stdlib ``hmac``)."""
    return hmac.new(key, message, hashlib.sha256).digest()


def _hkdf(material: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=HKDF_SALT, info=info).derive(
        material
    )


def fingerprint_of(material: bytes) -> str:
    """Return the public fingerprint (32 hex characters) of raw secret material."""
    return _hkdf(material, INFO_PREFIX + FINGERPRINT_PURPOSE.encode(), FINGERPRINT_BYTES).hex()


class SharedSecret:
    """A 32-byte shared secret under a key id; ``repr`` and ``str`` never show the material.

    Args:
        key_id: Key id (see ``validate_key_id``).
        material: Exactly 32 secret bytes.
        source: Where it came from, for messages (e.g. ``"env:PATHLINK_SECRET_K"``).

    The object is immutable and picklable; a pickle contains the material, so treat pickles
    as secrets.
    """

    __slots__ = ("_fingerprint", "_key_id", "_material", "_source")

    def __init__(self, key_id: str, material: bytes, *, source: str = "memory") -> None:
        validate_key_id(key_id)
        if not isinstance(material, bytes | bytearray | memoryview):
            raise TypeError("secret material must be bytes")
        material = bytes(material)
        if len(material) != SECRET_BYTES:
            raise ValueError(
                f"secret for key id {key_id!r} must be {SECRET_BYTES} bytes, got {len(material)}"
            )
        object.__setattr__(self, "_key_id", key_id)
        object.__setattr__(self, "_material", material)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_fingerprint", fingerprint_of(material))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SharedSecret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("SharedSecret is immutable")

    def __reduce__(self) -> tuple[object, tuple[str, bytes, str]]:
        return (_rebuild, (self._key_id, self._material, self._source))

    @property
    def key_id(self) -> str:
        """The key id."""
        return self._key_id

    @property
    def fingerprint(self) -> str:
        """Public one-way identifier of the material (32 hex characters)."""
        return self._fingerprint

    @property
    def source(self) -> str:
        """Where the secret was loaded from (env var name or file path), never the material."""
        return self._source

    def subkey(self, purpose: str) -> bytes:
        """Return the 32-byte HKDF-SHA256 subkey for ``purpose``.

        Args:
            purpose: Non-empty label, e.g. ``"tok/name_dob"``; info is
                ``b"pathlink/" + purpose.encode()``. ``"fingerprint"`` is reserved.
        """
        if not isinstance(purpose, str) or not purpose:
            raise ValueError("subkey purpose must be a non-empty string")
        if purpose == FINGERPRINT_PURPOSE:
            raise ValueError("subkey purpose 'fingerprint' is reserved for the public fingerprint")
        return _hkdf(self._material, INFO_PREFIX + purpose.encode("utf-8"), SUBKEY_BYTES)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SharedSecret):
            return NotImplemented
        return self._key_id == other._key_id and hmac.compare_digest(
            self._material, other._material
        )

    def __hash__(self) -> int:
        return hash((self._key_id, self._fingerprint))

    def __repr__(self) -> str:
        return f"SharedSecret(key_id={self._key_id!r}, fingerprint={self._fingerprint!r})"

    __str__ = __repr__


def _rebuild(key_id: str, material: bytes, source: str) -> SharedSecret:
    return SharedSecret(key_id, material, source=source)


def material_of(secret: SharedSecret) -> bytes:
    """Return the raw material (for ``keys`` storage code only; never log it)."""
    return secret._material


def check_fingerprint(expected: str | None, secret: SharedSecret, what: str) -> None:
    """Raise ``KeyMismatchError`` unless ``expected`` is ``secret``'s fingerprint.

    Args:
        expected: Fingerprint recorded with the data (e.g. an encoded batch).
        secret: The key this process holds.
        what: What the data is, for the message (e.g. ``"batch acme/2025-01"``).
    """
    if not expected:
        raise KeyMismatchError(
            f"{what} carries no key fingerprint; cannot tell which key encoded it "
            f"(this hub's key {secret.key_id!r} is {secret.fingerprint}); see docs/keys.md"
        )
    if str(expected).lower() != secret.fingerprint:  # public values: no constant time needed
        raise KeyMismatchError(
            f"{what} was encoded under key fingerprint {expected} but this hub's key "
            f"{secret.key_id!r} is {secret.fingerprint}; re-encode with the shared key or "
            "rotate (see docs/keys.md)"
        )


class KeyRing(Mapping[str, SharedSecret]):
    """Ordered mapping key id -> ``SharedSecret`` for rotation (oldest first).

    Args:
        secrets: The secrets, oldest first; key ids and fingerprints must be unique.
        current: Key id used to encode new data; defaults to the last one.
    """

    def __init__(self, secrets: Iterable[SharedSecret], *, current: str | None = None) -> None:
        self._by_id: dict[str, SharedSecret] = {}
        self._by_fp: dict[str, SharedSecret] = {}
        for secret in secrets:
            if secret.key_id in self._by_id:
                raise ValueError(f"key ring: duplicate key id {secret.key_id!r}")
            if secret.fingerprint in self._by_fp:
                other = self._by_fp[secret.fingerprint].key_id
                raise ValueError(
                    f"key ring: key ids {other!r} and {secret.key_id!r} hold the same secret "
                    f"(fingerprint {secret.fingerprint}); a rotation needs a new secret"
                )
            self._by_id[secret.key_id] = secret
            self._by_fp[secret.fingerprint] = secret
        if not self._by_id:
            raise ValueError("key ring needs at least one secret")
        if current is None:
            current = next(reversed(self._by_id))
        if current not in self._by_id:
            raise SecretError(f"key ring: current key id {current!r} is not in {list(self)}")
        self._current = current

    def __getitem__(self, key_id: str) -> SharedSecret:
        return self._by_id[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def current(self) -> SharedSecret:
        """The secret new data is encoded under."""
        return self._by_id[self._current]

    def by_fingerprint(self, fingerprint: str, what: str = "data") -> SharedSecret:
        """Return the secret with ``fingerprint``, or raise ``KeyMismatchError`` naming ``what``."""
        secret = self._by_fp.get(str(fingerprint).lower())
        if secret is None:
            known = ", ".join(f"{s.key_id}={s.fingerprint}" for s in self._by_id.values())
            raise KeyMismatchError(
                f"{what} was encoded under key fingerprint {fingerprint}, which is not in this "
                f"hub's key ring ({known}); re-encode with the shared key or rotate "
                "(see docs/keys.md)"
            )
        return secret

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={s.fingerprint[:8]}" for k, s in self._by_id.items())
        return f"KeyRing([{items}], current={self._current!r})"
