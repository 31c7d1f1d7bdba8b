"""Blob store on a local folder: content-addressed by SHA-256, encrypted at rest (AES-256-GCM).

A blob's address is the SHA-256 of its plaintext; the file at ``<root>/ab/cd/<digest>`` holds a
12-byte nonce then the ciphertext, authenticated with the digest as associated data, so a file
swapped for another blob's is detected on read. Writing the same content twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["BlobCorrupted", "FileBlobStore", "MemoryBlobStore"]


class BlobCorrupted(RuntimeError):
    """A stored blob failed authentication (tampered, truncated or encrypted with another key)."""


class FileBlobStore:
    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the blob key must be 32 bytes (AES-256)")
        self.root = root
        self._aead = AESGCM(key)

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    async def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, data, digest.encode())
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(sealed)
        os.replace(tmp, path)
        return digest

    async def get(self, digest: str) -> bytes | None:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        path = self._path(digest)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            return None
        if len(sealed) < 12 + 16:  # nonce + GCM tag: anything shorter was truncated
            raise BlobCorrupted(f"blob {digest} is truncated")
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], digest.encode())
        except InvalidTag as exc:
            raise BlobCorrupted(f"blob {digest} failed authentication") from exc

    async def iter_digests(self) -> AsyncIterator[str]:
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("*/*/*")):
            if len(path.name) == 64:
                yield path.name


class MemoryBlobStore:
    """In-memory twin for unit tests."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    async def get(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    async def iter_digests(self) -> AsyncIterator[str]:
        for digest in sorted(self.blobs):
            yield digest
