"""Keyed primitives of the encoding, every one from an audited library.

* :func:`hmac_sha256_many`: HMAC-SHA256 (RFC 2104) of many messages under one key. It is the
  construction of the standard library's :class:`hmac.HMAC`: the ``hashlib`` SHA-256 states of
  ``key XOR ipad`` and ``key XOR opad`` are computed once and copied per message, which saves
  ``hmac.digest``'s per-call key setup (about 1 µs against 2 µs per message here). Tests pin it
  to ``hmac.digest`` and to the RFC 4231 vectors. Callers pass each *distinct* message once.
* :func:`ctr_keystreams`: AES-256 in CTR mode (NIST SP 800-38A, from ``cryptography``), one
  short keystream per 96-bit nonce, the nonce a PRF output of what the stream is for (a salt
  value, a unit); many streams are computed in one batched call. Keyed permutations, rotations
  and noise are drawn from these streams.
* :func:`prp_blocks`: AES-256 in ECB mode over many independent 16-byte blocks (one
  ``cryptography`` call): a keyed pseudorandom permutation of each block, used to combine
  per-field PRF outputs into token-set values (``linkage.encode.tokens``).
* :func:`uniform_below`: turning stream words into uniform integers below ``n`` (Lemire's
  method with rejection, so exactly uniform) is plain arithmetic on the stream, done in numba by
  the callers' kernels; nothing keyed happens in compiled code.

Nothing here holds or logs key material; keys arrive as ``bytes`` from ``SecretLike.subkey``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["ctr_keystreams", "hmac_sha256", "hmac_sha256_jobs", "hmac_sha256_many",
           "hmac_sha256_slices", "prp_blocks"]

#: Below this many messages in one call, HMACs are computed in this process only: a second
#: process costs more to start than it saves (benchmarks/encode_throughput.py).
POOL_MIN_MESSAGES = 60_000

_BLOCK = 64  # SHA-256 block size (RFC 2104's B)


def _pads(key: bytes):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def hmac_sha256_many(key: bytes, messages: Sequence[bytes]) -> list[bytes]:
    """HMAC-SHA256 of each message under ``key`` (32-byte digests, in order)."""
    inner0, outer0 = _pads(key)
    out = []
    append = out.append
    for message in messages:
        inner = inner0.copy()
        inner.update(message)
        outer = outer0.copy()
        outer.update(inner.digest())
        append(outer.digest())
    return out


def hmac_sha256_slices(key: bytes, buffer: np.ndarray, offsets: np.ndarray) -> bytes:
    """HMAC-SHA256 of each message ``buffer[offsets[i]:offsets[i+1]]``; the digests
    concatenated (32 bytes each)."""
    inner0, outer0 = _pads(key)
    view = memoryview(np.ascontiguousarray(buffer, dtype=np.uint8))
    bounds = offsets.tolist()
    out = []
    append = out.append
    for start, end in itertools.pairwise(bounds):
        inner = inner0.copy()
        inner.update(view[start:end])
        outer = outer0.copy()
        outer.update(inner.digest())
        append(outer.digest())
    return b"".join(out)


def _helper_wanted() -> bool:
    """Whether HMACs may use a helper process: a second core, and not turned off by
    ``PATHLINK_ENCODE_PROCESSES=1``."""
    wanted = int(os.environ.get("PATHLINK_ENCODE_PROCESSES", "2"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(wanted, cores or 1) > 1


# The helper: a fresh interpreter that imports only the standard library (no numpy, no
# Pathlink, never the caller's __main__), reads the jobs from stdin, answers on stdout. It is
# the construction of hmac_sha256_slices written again with the same library calls.
_HELPER = """
import hashlib, pickle, sys
jobs = pickle.load(sys.stdin.buffer)
out = []
for key, buffer, offsets in jobs:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\\0")
    inner0 = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer0 = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    view = memoryview(buffer)
    digests = []
    for start, end in zip(offsets[:-1], offsets[1:]):
        inner = inner0.copy()
        inner.update(view[start:end])
        outer = outer0.copy()
        outer.update(inner.digest())
        digests.append(outer.digest())
    out.append(b"".join(digests))
pickle.dump(out, sys.stdout.buffer)
"""


def _split(buffer: np.ndarray, offsets: np.ndarray, at: int):
    """The messages before ``at`` and from ``at`` on, each as (buffer, offsets from 0)."""
    cut = int(offsets[at])
    return ((buffer[:cut], offsets[: at + 1]),
            (buffer[cut : int(offsets[-1])], offsets[at:] - cut))


def hmac_sha256_jobs(jobs: Sequence[tuple[bytes, np.ndarray, np.ndarray]]) -> list[bytes]:
    """:func:`hmac_sha256_slices` of several ``(key, buffer, offsets)`` jobs.

    With at least ``POOL_MIN_MESSAGES`` messages and a second core, the second half of every
    job goes to a helper process (a fresh interpreter on the standard library only, fed
    through a pipe: never a fork of this process and its threads, never a re-import of the
    caller's script) while this process does the first half; the results are identical (a
    test checks). If the helper fails, this process does its half too.
    """
    total = sum(len(offsets) - 1 for _, _, offsets in jobs)
    if total < POOL_MIN_MESSAGES or not _helper_wanted():
        return [hmac_sha256_slices(key, buffer, offsets) for key, buffer, offsets in jobs]
    halves = [(key, *_split(np.asarray(buffer, dtype=np.uint8), np.asarray(offsets),
                            (len(offsets) - 1) // 2)) for key, buffer, offsets in jobs]
    payload = pickle.dumps([(key, second[0].tobytes(), second[1].tolist())
                            for key, _, second in halves])
    helper = subprocess.Popen([sys.executable, "-I", "-c", _HELPER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        helper.stdin.write(payload)
        helper.stdin.close()
        local = [hmac_sha256_slices(key, *first) for key, first, _ in halves]
        remote = pickle.loads(helper.stdout.read())  # noqa: S301 - our own child's answer
        helper.wait()
    except (OSError, EOFError, pickle.UnpicklingError):
        helper.kill()
        helper.wait()
        local = [hmac_sha256_slices(key, *first) for key, first, _ in halves]
        remote = [hmac_sha256_slices(key, *second) for key, _, second in halves]
    if helper.returncode or len(remote) != len(local):
        remote = [hmac_sha256_slices(key, *second) for key, _, second in halves]
    return [mine + theirs for mine, theirs in zip(local, remote, strict=True)]


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of one message (see :func:`hmac_sha256_many`)."""
    return hmac_sha256_many(key, [message])[0]


def ctr_keystreams(key: bytes, nonces: np.ndarray, n_words: int,
                   chunk_bytes: int = 1 << 24) -> np.ndarray:
    """``uint16[len(nonces), n_words]``: AES-256-CTR keystreams, one per 12-byte nonce.

    Row ``i`` is the keystream of AES-256 in CTR mode (NIST SP 800-38A) under ``key`` with the
    initial counter block ``nonces[i] || 0x00000000`` (32-bit big-endian block counter), read as
    little-endian 16-bit words: the blocks ``AES(key, nonce || j)`` for ``j = 0, 1, ...``.
    All rows are computed by batched AES calls (ECB over the counter blocks, which is what CTR
    mode computes), so thousands of short streams cost one library call per chunk.
    """
    nonces = np.ascontiguousarray(nonces, dtype=np.uint8)
    if nonces.ndim != 2 or nonces.shape[1] != 12:
        raise ValueError("nonces must be uint8[n, 12]")
    blocks_per_row = -(-2 * n_words // 16)
    row_bytes = 16 * blocks_per_row
    flat = np.empty(len(nonces) * row_bytes + 16, dtype=np.uint8)  # update_into wants slack
    rows_per_chunk = max(1, min(len(nonces), chunk_bytes // row_bytes))
    # counter blocks of one chunk: nonce (12 bytes) || block number (4 bytes, big-endian); the
    # counter half is written once, the nonces per chunk
    blocks = np.empty((rows_per_chunk, blocks_per_row, 16), dtype=np.uint8)
    blocks[:, :, 12:] = np.arange(blocks_per_row, dtype=">u4").view(np.uint8).reshape(1, -1, 4)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    for lo in range(0, len(nonces), rows_per_chunk):
        part = nonces[lo : lo + rows_per_chunk]
        chunk = blocks[: len(part)]
        chunk[:, :, :12] = part[:, None, :]
        encryptor.update_into(chunk, flat[lo * row_bytes : (lo + len(part)) * row_bytes + 16])
    out = flat[: len(nonces) * row_bytes].view("<u2").reshape(len(nonces), -1)
    return out[:, :n_words]


def prp_blocks(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES-256 encryption of each row of ``uint8[n, 16]`` ``blocks`` (ECB: rows independent).

    ECB is the right mode here: each row is a distinct input to a keyed permutation, not a
    plaintext to hide; equal rows give equal outputs by design (they are equal token inputs).
    """
    if len(key) != 32:
        raise ValueError("an AES-256 key is 32 bytes")
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
    if blocks.ndim != 2 or blocks.shape[1] != 16:
        raise ValueError("blocks must be uint8[n, 16]")
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
    return np.frombuffer(out, dtype=np.uint8).reshape(blocks.shape).copy()
