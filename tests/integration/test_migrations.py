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
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0004"
    db.close()
