"""The BlobStore port's contract, on the file store (encrypted at rest) and its in-memory twin."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hygie.ports import BlobStore
from hygie.stores.files import BlobCorrupted, FileBlobStore, MemoryBlobStore

pytestmark = pytest.mark.anyio

KEY = bytes(range(32))
PLAINTEXT = b"Compte rendu d'hospitalisation de Claire Martin, NIR 2 85 04 45 234 123 51. " * 20


@pytest.fixture(params=["memory", "file"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return MemoryBlobStore()
    return FileBlobStore(tmp_path / "blobs", KEY)


async def collect(digests: AsyncIterator[str]) -> list[str]:
    return [d async for d in digests]


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- both stores -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"x", PLAINTEXT, bytes(range(256)) * 300], ids=["empty", "byte", "text", "binary"]
)
async def test_a_blob_is_addressed_by_the_sha256_of_its_content(blobs: BlobStore, data: bytes) -> None:
    digest = await blobs.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert await blobs.get(digest) == data


async def test_putting_the_same_content_twice_stores_it_once(blobs: BlobStore) -> None:
    first = await blobs.put(PLAINTEXT)
    second = await blobs.put(PLAINTEXT)
    assert first == second
    assert await collect(blobs.iter_digests()) == [first]
    assert await blobs.get(first) == PLAINTEXT


@pytest.mark.parametrize(
    "digest",
    [hashlib.sha256(b"never stored").hexdigest(), "0" * 64, "not-a-digest", "", "../../etc/passwd"],
    ids=["unknown", "zeros", "word", "empty", "path"],
)
async def test_an_unknown_digest_reads_as_none(blobs: BlobStore, digest: str) -> None:
    await blobs.put(b"something else")
    assert await blobs.get(digest) is None


async def test_iter_digests_lists_every_blob_once_in_order(blobs: BlobStore) -> None:
    assert await collect(blobs.iter_digests()) == []
    contents = [b"one", b"two", b"three", b"one"]
    digests = {await blobs.put(c) for c in contents}
    assert await collect(blobs.iter_digests()) == sorted(digests)
    assert len(digests) == 3


# -- the file store ----------------------------------------------------------------------------


async def test_the_file_on_disk_is_encrypted(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path, KEY)
    digest = await store.put(PLAINTEXT)
    (path,) = blob_files(tmp_path)
    assert path.name == digest
    assert path.relative_to(tmp_path).parts == (digest[:2], digest[2:4], digest)
    sealed = path.read_bytes()
    assert len(sealed) == 12 + len(PLAINTEXT) + 16  # nonce, ciphertext, GCM tag
    assert PLAINTEXT not in sealed
    assert b"Claire Martin" not in sealed
    assert b"NIR" not in sealed


async def test_a_second_put_does_not_rewrite_the_file(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path, KEY)
    digest = await store.put(PLAINTEXT)
    (path,) = blob_files(tmp_path)
    before = path.read_bytes()
    assert await store.put(PLAINTEXT) == digest
    assert path.read_bytes() == before  # a fresh nonce would have changed the bytes
    assert blob_files(tmp_path) == [path]


async def test_the_same_content_in_two_stores_gets_different_ciphertexts(tmp_path: Path) -> None:
    a, b = FileBlobStore(tmp_path / "a", KEY), FileBlobStore(tmp_path / "b", KEY)
    digest = await a.put(PLAINTEXT)
    await b.put(PLAINTEXT)
    (fa,) = blob_files(tmp_path / "a")
    (fb,) = blob_files(tmp_path / "b")
    assert fa.name == fb.name == digest
    assert fa.read_bytes() != fb.read_bytes()  # random nonces


@pytest.mark.parametrize(
    "position", [0, 5, 12, 100, -1], ids=["nonce", "nonce-end", "cipher", "middle", "tag"]
)
async def test_a_tampered_file_raises_blob_corrupted(tmp_path: Path, position: int) -> None:
    store = FileBlobStore(tmp_path, KEY)
    digest = await store.put(PLAINTEXT)
    (path,) = blob_files(tmp_path)
    sealed = bytearray(path.read_bytes())
    sealed[position] ^= 0x01
    path.write_bytes(bytes(sealed))
    with pytest.raises(BlobCorrupted):
        await store.get(digest)


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(0, id="empty"),
        pytest.param(7, id="seven"),
        pytest.param(8, id="eight"),
        pytest.param(11, id="short-nonce"),
        pytest.param(12, id="nonce-only"),
        pytest.param(27, id="no-tag"),
        pytest.param(-1, id="one-less"),
    ],
)
async def test_a_truncated_file_raises_blob_corrupted(tmp_path: Path, keep: int) -> None:
    store = FileBlobStore(tmp_path, KEY)
    digest = await store.put(PLAINTEXT)
    (path,) = blob_files(tmp_path)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(BlobCorrupted):
        await store.get(digest)


async def test_a_file_swapped_for_another_blob_raises_blob_corrupted(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path, KEY)
    one = await store.put(b"first document")
    two = await store.put(b"second document")
    store._path(two).write_bytes(store._path(one).read_bytes())  # valid ciphertext, wrong address
    assert await store.get(one) == b"first document"
    with pytest.raises(BlobCorrupted):
        await store.get(two)


async def test_another_key_cannot_read_a_blob(tmp_path: Path) -> None:
    digest = await FileBlobStore(tmp_path, KEY).put(PLAINTEXT)
    other = FileBlobStore(tmp_path, secrets.token_bytes(32))
    with pytest.raises(BlobCorrupted):
        await other.get(digest)
    assert await FileBlobStore(tmp_path, KEY).get(digest) == PLAINTEXT  # still readable with its key


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_the_key_must_be_32_bytes(tmp_path: Path, size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FileBlobStore(tmp_path, b"k" * size)


async def test_iter_digests_skips_stray_files_and_survives_a_missing_root(tmp_path: Path) -> None:
    missing = FileBlobStore(tmp_path / "never-created", KEY)
    assert await collect(missing.iter_digests()) == []
    store = FileBlobStore(tmp_path / "blobs", KEY)
    digest = await store.put(PLAINTEXT)
    folder = store._path(digest).parent
    (folder / f"{digest}.1a2b3c4d.tmp").write_bytes(b"interrupted write")
    (folder / "README").write_text("not a blob")
    assert await collect(store.iter_digests()) == [digest]
