"""Blob store on a local folder: content-addressed by SHA-256, encrypted at rest (AES-256-GCM).

A blob's address is the SHA-256 of its plaintext; the file at ``<root>/ab/cd/<digest>`` holds a
12-byte nonce then the ciphertext, authenticated with the digest as associated data, so a file
swapped for another blob's is detected on read. Writing the same content twice stores it once
(and touches the file: its modification time is when the content was last put, which
:meth:`FileBlobStore.delete` checks so that a purge never removes a blob an upload of the same
content is about to use).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
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
            try:
                os.utime(path)  # put again: a purge running now must leave it
            except FileNotFoundError:
                pass  # removed by a purge in between: write it anew
            else:
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

    async def delete(self, digest: str, *, unless_put_since: float) -> bool:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return False
        path = self._path(digest)
        try:
            if path.stat().st_mtime >= unless_put_since:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

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
        self.put_at: dict[str, float] = {}

    async def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        self.put_at[digest] = time.time()
        return digest

    async def get(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    async def delete(self, digest: str, *, unless_put_since: float) -> bool:
        if digest not in self.blobs or self.put_at.get(digest, 0.0) >= unless_put_since:
            return False
        del self.blobs[digest]
        self.put_at.pop(digest, None)
        return True

    async def iter_digests(self) -> AsyncIterator[str]:
        for digest in sorted(self.blobs):
            yield digest
