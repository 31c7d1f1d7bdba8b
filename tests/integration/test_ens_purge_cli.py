"""``hygie ens purger``: the daily purge from the console, on a real SQLite database and blob
folder, through typer's runner — the dry run erases nothing, the run erases the expired space
(its encrypted content included), leaves the others, and ``hygie audit verify`` still passes."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hygie.bootstrap import open_runtime
from hygie.cli import app
from hygie.config import load_settings
from hygie.domain.ens.lifecycle import SpaceRules, closing_consent, state_of
from hygie.fhir.indexing import extract_index
from hygie.fhir.resources import stamp
from hygie.migrate import migrate
from hygie.ports import WriteOp

runner = CliRunner()
YEAR_US = 365 * 86_400 * 1_000_000


def _op(resource: dict[str, Any], ts: int) -> WriteOp:
    index = extract_index(resource)
    patient = index.compartments[0] if index.compartments else None
    content = stamp(resource, resource["id"], 1, ts)
    return WriteOp(resource["resourceType"], resource["id"], 1, ts, content, index, "PUT", False, patient)


async def _seed(closed_us: dict[str, int]) -> None:
    runtime = await open_runtime(load_settings())
    try:
        now = time.time_ns() // 1000
        async with runtime.store.transaction() as tx:
            for pid, at in closed_us.items():
                await tx.write(_op({"resourceType": "Patient", "id": pid}, now))
                binary = {
                    "resourceType": "Binary",
                    "id": f"bin-{pid}",
                    "contentType": "application/pdf",
                    "securityContext": {"reference": f"Patient/{pid}"},
                    "data": base64.b64encode(f"%PDF {pid}".encode()).decode(),
                }
                await tx.write(_op(binary, now))
                rules = SpaceRules()
                consent = closing_consent(
                    pid, state_of(None, at, rules), None, by=f"Patient/{pid}", now_us=at, rules=rules
                )
                await tx.write(_op({**consent, "id": f"espace-{pid}"}, now))
    finally:
        await runtime.close()


async def _exists(resource_type: str, id: str) -> bool:
    runtime = await open_runtime(load_settings())
    try:
        return await runtime.store.read(resource_type, id) is not None
    finally:
        await runtime.close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
    migrate(url)
    monkeypatch.setenv("HYGIE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HYGIE_DATABASE_URL", url)
    return tmp_path


def test_the_purge_command_erases_the_expired_spaces(data_dir: Path) -> None:
    now = time.time_ns() // 1000
    asyncio.run(_seed({"ancien": now - 11 * YEAR_US, "recent": now - YEAR_US}))
    for blob in (data_dir / "blobs").glob("*/*/*"):
        os.utime(blob, (0, 0))  # stored long ago
    assert len(list((data_dir / "blobs").glob("*/*/*"))) == 2

    dry = runner.invoke(app, ["ens", "purger", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Patient/ancien" in dry.output and "Patient/recent" not in dry.output
    assert "3 ressource(s) serait effacé(s)" in dry.output
    assert "1 espace(s) à effacer (simulation : rien n’a été effacé)." in dry.output
    assert asyncio.run(_exists("Patient", "ancien"))

    done = runner.invoke(app, ["ens", "purger"])
    assert done.exit_code == 0, done.output
    assert "Binary 1, Consent 1, Patient 1" in done.output
    assert "1 espace(s) effacé(s)." in done.output
    assert not asyncio.run(_exists("Patient", "ancien"))
    assert not asyncio.run(_exists("Binary", "bin-ancien"))
    assert asyncio.run(_exists("Binary", "bin-recent"))
    assert len(list((data_dir / "blobs").glob("*/*/*"))) == 1

    verified = runner.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output

    again = runner.invoke(app, ["ens", "purger"])
    assert again.exit_code == 0 and "0 espace(s) effacé(s)." in again.output
