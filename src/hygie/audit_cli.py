"""``hygie audit``: verify the audit trail, sign checkpoints.

``verify`` reads every record, chain head and checkpoint and checks them with
:func:`hygie.domain.audit.verify_chain`: exit 0 when the trail is intact, 1 with the list of
anomalies otherwise. ``checkpoint`` signs the head of every partition that grew since its last
checkpoint; run it often (a timer, a cron job): a chain rewritten after its last checkpoint
cannot be told from a genuine one.

The signing key is an Ed25519 private key in PEM: ``HYGIE_AUDIT_KEY_FILE``, or
``$HYGIE_DATA_DIR/audit-signing.pem`` created (mode 0600) the first time ``checkpoint`` needs
it, with its public key beside it (``audit-signing.pub.pem``). Verification needs only public
keys: the one beside the key file, plus any given with ``--public-key`` (keys rotated out).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from hygie.config import load_settings
from hygie.domain.audit import AuditRecord, AuditSigner, Checkpoint, VerifyReport, key_id, verify_chain
from hygie.stores.audit_sql import open_audit_log

__all__ = ["audit_app", "load_public_keys", "load_signer", "signing_key_path"]

audit_app = typer.Typer(help="The audit trail: verify it, sign checkpoints.", no_args_is_help=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (HYGIE_DATA_DIR; default ./data)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="sqlite:///PATH or postgresql://… (HYGIE_DATABASE_URL)")
]
PublicKeys = Annotated[
    list[Path] | None, typer.Option("--public-key", help="Extra Ed25519 public key (PEM) to accept")
]


def signing_key_path(data_dir: Path) -> Path:
    """Where the signing key is: ``HYGIE_AUDIT_KEY_FILE`` or the data folder."""
    configured = os.environ.get("HYGIE_AUDIT_KEY_FILE")
    return Path(configured) if configured else data_dir / "audit-signing.pem"


def _public_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name.removesuffix(".pem") + ".pub.pem")


def load_signer(key_path: Path, *, create: bool) -> AuditSigner | None:
    """The signer for ``key_path``; with ``create``, a new key is generated if none exists."""
    if key_path.exists():
        key = load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise typer.BadParameter(f"{key_path} is not an Ed25519 private key")
        return AuditSigner(key)
    if not create:
        return None
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    _public_path(key_path).write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return AuditSigner(key)


def load_public_keys(key_path: Path, extra: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id: the signing key's (from its public file, or the private key) and
    the extra files."""
    keys: list[Ed25519PublicKey] = []
    signer = None if _public_path(key_path).exists() else load_signer(key_path, create=False)
    if signer is not None:
        keys.append(signer.private_key.public_key())
    for path in [_public_path(key_path), *extra]:
        if path.exists():
            key = load_pem_public_key(path.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise typer.BadParameter(f"{path} is not an Ed25519 public key")
            keys.append(key)
        elif path in extra:
            raise typer.BadParameter(f"{path} does not exist")
    return {key_id(k): k for k in keys}


def _settings(data_dir: Path | None, database_url: str | None) -> tuple[Path, str]:
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    return settings.data_dir, settings.database_url


async def _verify(url: str, public_keys: dict[str, Ed25519PublicKey]) -> VerifyReport:
    """Verify one partition at a time (records stream in partition order), so that memory
    holds a single chain however large the trail."""
    log = await open_audit_log(url)
    try:
        heads = await log.heads()
        signed: dict[str, list[Checkpoint]] = {}
        for cp in await log.checkpoints():
            signed.setdefault(cp.partition, []).append(cp)
        report = VerifyReport()

        def check(partition: str, chain: list[AuditRecord]) -> None:
            head = {partition: heads[partition]} if partition in heads else {}
            report.add(verify_chain(chain, signed.pop(partition, []), public_keys, heads=head))

        partition: str | None = None
        chain: list[AuditRecord] = []
        seen: set[str] = set()
        async for record in log.iter_all():
            if record.partition != partition:
                if partition is not None:
                    check(partition, chain)
                partition, chain = record.partition, []
                seen.add(partition)
            chain.append(record)
        if partition is not None:
            check(partition, chain)
        # partitions left with a head or checkpoints but no record at all
        rest = {p: h for p, h in heads.items() if p not in seen}
        leftover = [cp for cps in signed.values() for cp in cps]
        report.add(verify_chain([], leftover, public_keys, heads=rest))
        return report
    finally:
        await log.close()


@audit_app.command()
def verify(data_dir: DataDir = None, database_url: DatabaseUrl = None, public_key: PublicKeys = None) -> None:
    """Check every chain, head and signed checkpoint; exit 1 listing each anomaly found."""
    folder, url = _settings(data_dir, database_url)
    keys = load_public_keys(signing_key_path(folder), public_key or [])
    report = asyncio.run(_verify(url, keys))
    summary = f"{report.records} records in {report.partitions} partitions, {report.checkpoints} checkpoints"
    if report.ok:
        typer.echo(f"audit trail intact: {summary}")
        return
    typer.echo(f"audit trail TAMPERED: {len(report.anomalies)} anomalies ({summary})")
    for anomaly in report.anomalies:
        typer.echo(f"  {anomaly}")
    raise typer.Exit(1)


async def _checkpoint(url: str, signer: AuditSigner) -> int:
    log = await open_audit_log(url)
    try:
        return len(await log.checkpoint(signer, time.time_ns() // 1000))
    finally:
        await log.close()


@audit_app.command()
def checkpoint(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Sign the head of every partition that grew since its last checkpoint."""
    folder, url = _settings(data_dir, database_url)
    path = signing_key_path(folder)
    # a configured key must exist: only the default one is generated on first use
    signer = load_signer(path, create=not os.environ.get("HYGIE_AUDIT_KEY_FILE"))
    if signer is None:
        typer.echo(f"no audit signing key at {path} (HYGIE_AUDIT_KEY_FILE)", err=True)
        raise typer.Exit(2)
    signed = asyncio.run(_checkpoint(url, signer))
    typer.echo(f"{signed} partitions checkpointed with key {signer.key_id}")
