"""``hygie store``: publishers and authorities from the console, the probes' cron command, the
grid's publication and the dashboard — on a real SQLite database, through typer's runner.

Apps are deposited, submitted and reviewed through ``runtime.app_store`` between the commands,
on the same database. The probes run with ``HYGIE_STORE_PROBE_ALLOW_PRIVATE=1`` (the app's
redirect URI is on the loopback, as in every test) and never connect anywhere: the app has no
launch URL and its redirect URI is an IP literal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from typer.testing import CliRunner

from hygie.auth.passwords import MIN_LENGTH
from hygie.bootstrap import Runtime, open_runtime
from hygie.cli import app
from hygie.config import load_settings
from hygie.domain.store.catalogue import App, Assessment, pathway, siret_valid
from hygie.migrate import migrate
from hygie.store.service import Member

T = TypeVar("T")
runner = CliRunner()
PASSWORD = "Un mot de passe solide 42"
SIRET = next(s for s in (f"4423456780001{d}" for d in range(10)) if siret_valid(s))


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite database, named by the environment as an operator's shell would."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    monkeypatch.setenv("HYGIE_DATABASE_URL", url)
    monkeypatch.setenv("HYGIE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HYGIE_STORE_PROBE_ALLOW_PRIVATE", "1")
    monkeypatch.delenv("HYGIE_BASE_URL", raising=False)
    migrate(url)
    return url


def on_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    async def run() -> T:
        runtime = await open_runtime(load_settings())
        try:
            return await action(runtime)
        finally:
            await runtime.close()

    return asyncio.run(run())


def invoke(*args: str, password: str | None = None) -> Any:
    return runner.invoke(
        app, ["store", *args], input=f"{password}\n" if password else None, env={"COLUMNS": "200"}
    )


def complete(app_: App, required: list[Any]) -> App:
    answers = {
        c.id: Assessment(True, f"https://preuves.example.fr/{c.id}", "LNE, 2026-10-02 : conforme")
        for c in required
    }
    commitment = None if pathway(app_) == "evaluation" else {"by": "J. MOREAU", "at": 1, "text": "Exact."}
    return replace(app_, assessment=answers, commitment=commitment)


def test_publishers_and_authorities_are_created_with_their_accounts(database: str) -> None:
    weak = invoke(
        "editeur-ajouter",
        "--nom",
        "Santé Connectée SAS",
        "--siret",
        SIRET,
        "--courriel",
        "contact@sc.fr",
        "--login",
        "editeur@sc.fr",
        "--password-stdin",
        password="court",
    )
    assert weak.exit_code == 2
    assert f"au moins {MIN_LENGTH} caractères" in weak.output

    # the refused account left no publisher behind: the same SIRET is accepted now
    made = invoke(
        "editeur-ajouter",
        "--nom",
        "Santé  Connectée SAS",
        "--siret",
        SIRET,
        "--courriel",
        "contact@sc.fr",
        "--login",
        "editeur@sc.fr",
        "--password-stdin",
        "--totp",
        password=PASSWORD,
    )
    assert made.exit_code == 0, made.output
    publisher = orjson.loads(made.stdout)
    assert publisher["name"] == "Santé Connectée SAS" and publisher["totp_uri"].startswith("otpauth://")

    again = invoke(
        "editeur-ajouter",
        "--nom",
        "Autre SAS",
        "--siret",
        SIRET,
        "--courriel",
        "contact@autre.fr",
        "--login",
        "autre@autre.fr",
        "--password-stdin",
        password=PASSWORD,
    )
    assert again.exit_code == 2
    assert "déjà inscrit avec ce SIRET" in again.output
    bad_siret = invoke(
        "editeur-ajouter",
        "--nom",
        "Autre SAS",
        "--siret",
        "12345678901234",
        "--courriel",
        "contact@autre.fr",
        "--login",
        "autre@autre.fr",
        "--password-stdin",
        password=PASSWORD,
    )
    assert bad_siret.exit_code == 2 and "clé doit être juste" in bad_siret.output

    agent = invoke(
        "autorite-ajouter",
        "--agence",
        "ansm",
        "--login",
        "agent@ansm.fr",
        "--password-stdin",
        password=PASSWORD,
    )
    assert agent.exit_code == 0, agent.output
    made_agent = orjson.loads(agent.stdout)
    assert made_agent["agency_name"] == "Agence du médicament (ANSM)"
    unknown = invoke(
        "autorite-ajouter", "--agence", "has", "--login", "x@has.fr", "--password-stdin", password=PASSWORD
    )
    assert unknown.exit_code == 2

    async def check(rt: Runtime) -> None:
        assert rt.accounts is not None
        editor = await rt.accounts.by_login("editeur@sc.fr")
        assert editor is not None and editor.kind == "publisher" and editor.has_totp
        member = await rt.app_store.member(editor.id)
        assert member == Member(editor.id, "publisher", publisher_id=publisher["publisher"])
        officer = await rt.app_store.member(made_agent["account"])
        assert officer is not None and (officer.role, officer.agency) == ("authority", "ansm")
        assert (await rt.accounts.by_login("autre@autre.fr")) is None  # refused: nothing created

    on_runtime(check)


def test_probes_downgrade_a_lapsed_app_and_restore_it(database: str) -> None:
    made = invoke(
        "editeur-ajouter",
        "--nom",
        "Santé Connectée SAS",
        "--siret",
        SIRET,
        "--courriel",
        "contact@sc.fr",
        "--login",
        "editeur@sc.fr",
        "--password-stdin",
        password=PASSWORD,
    )
    agent = invoke(
        "autorite-ajouter",
        "--agence",
        "ans",
        "--login",
        "agent@ans.fr",
        "--password-stdin",
        password=PASSWORD,
    )
    assert made.exit_code == 0 and agent.exit_code == 0
    editor_id, agent_id = orjson.loads(made.stdout)["account"], orjson.loads(agent.stdout)["account"]

    assert invoke("sonder").output.startswith("Aucune application référencée")

    async def deposit(rt: Runtime) -> str:
        store = rt.app_store
        editor, reviewer = await store.member(editor_id), await store.member(agent_id)
        assert editor is not None and reviewer is not None
        grid = await store.grid()
        draft = App(
            id="",
            publisher_id="",
            name="Insuline Pilote",
            summary="Le calcul des doses d’insuline, partagé avec le diabétologue.",
            description="Calcule les doses et les écrit dans le dossier.",
            category="1",
            ce_class="IIb",
            website="https://insuline.example.fr",
            redirect_uris=("http://127.0.0.1:9/retour",),
            hosts=("127.0.0.1",),
            scopes="openid launch/patient patient/Observation.crs",
            purpose="Suivre vos glycémies.",
        )
        saved = await store.save_draft(editor, complete(draft, grid.required("1", True)))
        await store.submit(editor, saved.id)
        await store.take(reviewer, saved.id)
        listed = await store.approve(reviewer, saved.id, "", data_exchange=True)
        wellness = App(
            id="",
            publisher_id="",
            name="Marche Active",
            summary="Vos pas du jour, sans rien partager.",
            description="Un podomètre.",
            website="https://marche.example.fr",
            hosts=("marche.example.fr",),
        )
        saved = await store.save_draft(editor, complete(wellness, grid.required("3", False)))
        await store.submit(editor, saved.id)
        return listed.id

    app_id = on_runtime(deposit)
    passed = invoke("sonder")
    assert passed.exit_code == 0, passed.output
    assert "Insuline Pilote" in passed.output and "Marche Active" in passed.output
    assert "✓ Enregistrement SMART valide : enregistrement actif" in passed.output
    assert "2 applications contrôlées, 0 contrôle en échec." in passed.output

    # the registration lapses (the client is suspended behind the store's back): downgraded
    async def lapse(rt: Runtime) -> None:
        assert rt.auth is not None
        await rt.auth.clients.set_status(f"app-{app_id}", "suspended")

    on_runtime(lapse)
    failed = invoke("sonder")
    assert failed.exit_code == 1, failed.output
    assert "✗ Enregistrement SMART valide : l’enregistrement est suspendu" in failed.output
    assert (
        "Insuline Pilote" in failed.output and "(était : Référencée avec échange de données)" in failed.output
    )

    async def state(rt: Runtime) -> tuple[str, str, str]:
        found = await rt.app_store.app(app_id)
        assert found is not None and rt.auth is not None
        client = await rt.auth.clients.get(found.client_id)
        assert client is not None
        return found.state, found.changelog[-1].event, client.status

    assert on_runtime(state) == ("listed", "downgrade", "suspended")
    # its registration suspended by the downgrade is not a fault: the next run restores it
    restored = invoke("sonder")
    assert restored.exit_code == 0, restored.output
    assert on_runtime(state) == ("listed_data", "restore", "active")


def test_the_grid_is_published_from_a_file_and_the_dashboard_printed(database: str, tmp_path: Path) -> None:
    from hygie.domain.store.grid import shipped_grid

    broken = tmp_path / "cassee.json"
    broken.write_text('{"families": [', encoding="utf-8")
    result = invoke("grille-publier", str(broken))
    assert result.exit_code == 2 and "JSON illisible (ligne 1" in result.output

    faulty = shipped_grid().to_json()
    faulty["criteria"][0]["levels"] = {"1": "exige"}
    faulty["criteria"][2]["evidence"] = "photo"
    wrong = tmp_path / "fautive.json"
    wrong.write_bytes(orjson.dumps(faulty))
    result = invoke("grille-publier", str(wrong))
    assert result.exit_code == 2
    assert "criteria[0].levels : un niveau pour chacune des catégories 1, 2 et 3" in result.output
    assert "criteria[2].evidence : 'photo'" in result.output
    assert invoke("grille-publier", str(tmp_path / "absente.json")).exit_code == 2

    revised = shipped_grid().to_json()
    revised["note"] = "Écoconception exigée des dispositifs médicaux."
    next(c for c in revised["criteria"] if c["id"] == "ENV-01")["levels"]["1"] = "exige"
    good = tmp_path / "grille-v2.json"
    good.write_bytes(orjson.dumps(revised))
    result = invoke("grille-publier", str(good))
    assert result.exit_code == 0, result.output
    assert "Version 2 de la grille publiée (22 critères)" in result.output

    async def grid_in_force(rt: Runtime) -> tuple[int, str, str]:
        grid = await rt.app_store.grid()
        criterion = grid.criterion("ENV-01")
        assert criterion is not None
        return grid.version, grid.published, criterion.level("1", False)

    version, published, level = on_runtime(grid_in_force)
    assert (version, published, level) == (2, date.today().isoformat(), "exige")

    board = invoke("tableau")
    assert board.exit_code == 0, board.output
    assert "Applications par état et par catégorie (0)" in board.output
    assert "Référencée avec échange de données" in board.output
    assert "Contrôle (ansm)" in board.output and "Surveillance (ans)" in board.output
