"""The ``hygie`` command: import of every shared Synthea bundle, migrate, demo loading."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from hygie.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HYGIE_DATA_DIR", "HYGIE_DATABASE_URL", "HYGIE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_synthea_bundle_imports_as_a_transaction(
    backend: str, shared_data: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    bundles = shared_data / "synthea-r4" / "bundles"
    expected = sum(
        len(orjson.loads(gzip.decompress(p.read_bytes()))["entry"]) for p in bundles.glob("*.json.gz")
    )
    if backend == "postgres":
        url = request.getfixturevalue("pg_database")
        import psycopg

        from hygie.stores.sql import STORE_TABLES

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(STORE_TABLES)} RESTART IDENTITY")
    else:
        url = f"sqlite:///{tmp_path / 'import.sqlite3'}"
    result = runner.invoke(
        app,
        ["import", str(bundles), "--data-dir", str(tmp_path), "--database-url", url],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert f"Stored: {expected} resources from 100 files" in result.output
    assert "Rejected" not in result.output


def test_import_exits_non_zero_and_lists_rejections(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Patient", "id": "x", "gender": "homme"}')
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = runner.invoke(
        app, ["import", str(bad), "--database-url", url, "--data-dir", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "Rejected: 1" in result.output
    assert "gender" in result.output
    missing = runner.invoke(app, ["import", str(tmp_path / "nope.json"), "--database-url", url])
    assert missing.exit_code == 2


def test_migrate_then_demo_load_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    result = runner.invoke(app, ["migrate", "--database-url", url, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    empty = tmp_path / "no-synthea"
    empty.mkdir()
    data = tmp_path / "demo"
    first = runner.invoke(
        app,
        ["demo", "--load-only", "--patients", "3", "--synthea", str(empty), "--data-dir", str(data)],
        env={"COLUMNS": "200"},
    )
    assert first.exit_code == 0, first.output
    assert "Claire DUPONT" in first.output
    assert (data / "hygie.sqlite3").exists()
    again = runner.invoke(
        app,
        ["demo", "--load-only", "--patients", "3", "--synthea", str(empty), "--data-dir", str(data)],
        env={"COLUMNS": "200"},
    )
    assert again.exit_code == 0
    assert "déjà chargées" in again.output
    os.environ.pop("HYGIE_DATABASE_URL", None)


def test_the_demo_api_client_gets_a_read_only_token_that_the_api_accepts(tmp_path: Path) -> None:
    """``hygie client token`` signs a backend-service token with the server's own keys, narrowed to
    the client's registration; the FHIR API accepts it for reads and refuses what it does not grant."""
    import anyio
    import httpx

    from hygie.config import load_settings
    from hygie.web.app import create_app

    empty = tmp_path / "no-synthea"
    empty.mkdir()
    data = tmp_path / "demo"
    loaded = runner.invoke(
        app,
        ["demo", "--load-only", "--patients", "3", "--synthea", str(empty), "--data-dir", str(data)],
        env={"COLUMNS": "300"},
    )
    assert loaded.exit_code == 0, loaded.output
    # rich may fold long lines whatever COLUMNS says (under xdist): compare words, not lines
    assert "hygie client token --client-id hygie-demo-api" in " ".join(loaded.output.split())
    issued = runner.invoke(app, ["client", "token", "--client-id", "hygie-demo-api", "--data-dir", str(data)])
    assert issued.exit_code == 0, issued.output
    token = orjson.loads(issued.output)
    assert token["scope"] == "system/*.rs"
    wider = runner.invoke(
        app,
        ["client", "token", "--client-id", "hygie-demo-api", "--scope", "launch", "--data-dir", str(data)],
    )
    assert wider.exit_code == 2
    unknown = runner.invoke(app, ["client", "token", "--client-id", "nobody", "--data-dir", str(data)])
    assert unknown.exit_code == 2
    os.environ.pop("HYGIE_DATABASE_URL", None)
    os.environ.pop("HYGIE_DATA_DIR", None)

    async def call() -> tuple[int, int, int]:
        settings = load_settings(data_dir=data, database_url=f"sqlite:///{data / 'hygie.sqlite3'}")
        web = create_app(settings)
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        async with (
            web.router.lifespan_context(web),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://x") as http,
        ):
            read = await http.get("/fhir/Patient", params={"identifier": "285044523412351"}, headers=bearer)
            anonymous = await http.get("/fhir/Patient")
            write = await http.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer)
            return read.status_code, anonymous.status_code, write.status_code

    assert anyio.run(call) == (200, 401, 403)
