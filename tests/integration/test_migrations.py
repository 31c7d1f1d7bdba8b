"""Data migrations on a real database file: an older database comes out as a new one would be."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hygie.bootstrap import open_runtime
from hygie.config import load_settings
from hygie.domain.access import Caller
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route
from hygie.migrate import migrate

pytestmark = pytest.mark.anyio


async def test_0004_files_stored_binaries_in_the_record_their_security_context_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
    runtime = await open_runtime(load_settings(data_dir=tmp_path, database_url=url))
    operator = Caller.operator("tests")
    try:
        patient = await route(
            runtime.service,
            FhirRequest("POST", "Patient", resource={"resourceType": "Patient"}, caller=operator),
        )
        patient_id = patient.headers["Location"].split("/Patient/")[1].split("/")[0]
        for context in (f"Patient/{patient_id}", None):
            binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "Ym9uam91cg=="}
            if context:
                binary["securityContext"] = {"reference": context}
            answer = await route(
                runtime.service, FhirRequest("POST", "Binary", resource=binary, caller=operator)
            )
            assert answer.status == 201
    finally:
        await runtime.close()
    db = sqlite3.connect(tmp_path / "hygie.sqlite3")
    # as a database written before 0004 holds them: Binaries outside every record
    with db:
        db.execute("UPDATE resources SET patient = NULL WHERE res_type = 'Binary'")
        db.execute("UPDATE history SET patient = NULL WHERE res_type = 'Binary'")
        db.execute("UPDATE alembic_version SET version_num = '0003'")
    migrate(url)
    filed = sorted(
        (row[0] or "") for row in db.execute("SELECT patient FROM resources WHERE res_type = 'Binary'")
    )
    assert filed == ["", patient_id]  # the one without a securityContext stays outside
    history = [row[0] for row in db.execute("SELECT patient FROM history WHERE res_type = 'Binary'")]
    assert sorted(p or "" for p in history) == ["", patient_id]
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] >= "0004"  # and later ones
    db.close()


async def test_0005_indexes_the_positions_of_stored_locations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
    settings = load_settings(data_dir=tmp_path, database_url=url)
    runtime = await open_runtime(settings)
    operator = Caller.operator("tests")
    try:
        for name, position in (("Lyon", {"latitude": 45.764, "longitude": 4.8357}), ("Sans position", None)):
            location: dict[str, object] = {"resourceType": "Location", "name": name}
            if position:
                location["position"] = position
            answer = await route(
                runtime.service, FhirRequest("POST", "Location", resource=location, caller=operator)
            )
            assert answer.status == 201
    finally:
        await runtime.close()
    db = sqlite3.connect(tmp_path / "hygie.sqlite3")
    # as a database written before 0005 holds them: no geographic index at all
    with db:
        db.execute("DROP TABLE idx_geo")
        db.execute("UPDATE alembic_version SET version_num = '0004'")
    migrate(url)
    rows = db.execute("SELECT res_type, param, round(lat, 4), round(lng, 4) FROM idx_geo").fetchall()
    assert rows == [("Location", "near", 45.764, 4.8357)]
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] >= "0005"  # the head
    db.close()
    runtime = await open_runtime(settings)
    try:
        found = await route(
            runtime.service,
            FhirRequest("GET", "Location", [("near", "45.75|4.85|5|km")], caller=operator),
        )
        assert found.status == 200
    finally:
        await runtime.close()


async def test_0006_indexes_the_archive_period_of_stored_spaces(tmp_path: Path) -> None:
    from hygie.domain.ens.lifecycle import SpaceRules, closing_consent, state_of

    url = f"sqlite:///{tmp_path / 'hygie.sqlite3'}"
    settings = load_settings(data_dir=tmp_path, database_url=url)
    runtime = await open_runtime(settings)
    operator = Caller.operator("tests")
    rules = SpaceRules()
    consent = closing_consent("p", state_of(None, 0, rules), None, by="Patient/p", now_us=10**15, rules=rules)
    try:
        for resource in ({"resourceType": "Patient", "id": "p"}, {**consent, "id": "espace-p"}):
            path = f"{resource['resourceType']}/{resource['id']}"
            answer = await route(
                runtime.service, FhirRequest("PUT", path, resource=resource, caller=operator)
            )
            assert answer.status == 201
    finally:
        await runtime.close()
    db = sqlite3.connect(tmp_path / "hygie.sqlite3")
    # as a database written before 0006 holds them: no such index, no such rows
    with db:
        db.execute("DROP INDEX history_patient")
        db.execute("DELETE FROM idx_date WHERE param = 'ens-archive-until'")
        db.execute("UPDATE alembic_version SET version_num = '0005'")
    migrate(url)
    rows = db.execute("SELECT res_type, low FROM idx_date WHERE param = 'ens-archive-until'").fetchall()
    assert rows == [("Consent", 1_315_532_800_000_000)]  # ten years after the closing
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "history_patient" in indexes
    db.close()
