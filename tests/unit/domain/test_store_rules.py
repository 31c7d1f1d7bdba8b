"""The store's rules: the criteria grid, the graduated process, the changelog, the catalogue's
search, the risk-weighted audit draw."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hygie.domain.store.catalogue import (
    App,
    Assessment,
    CatalogueFilters,
    TransitionRefused,
    declared_hosts,
    pathway,
    search_catalogue,
    siret_valid,
    submission_problems,
    transition,
)
from hygie.domain.store.grid import Grid, GridError, shipped_grid
from hygie.domain.store.sampling import draw, risk_of

DAY = 86_400 * 1_000_000


def complete(app: App, grid: Grid) -> App:
    """``app`` with every mandatory criterion met, evidenced and tested."""
    answers = {
        c.id: Assessment(
            True, f"preuve {c.id}", "Laboratoire X, 2026-10-01, conforme" if c.evidence == "test" else ""
        )
        for c in grid.required(app.category, app.data_access)
    }
    return replace(app, assessment=answers)


WELLNESS = App(
    id="w1",
    publisher_id="p1",
    name="Pas à pas",
    summary="Compter ses pas chaque jour",
    description="Un podomètre.",
    category="3",
    website="https://pas.exemple.fr",
    hosts=("pas.exemple.fr",),
    commitment={"by": "Anne Éditrice", "role": "Présidente", "at": 1, "text": "Je m’engage"},
)
DEVICE = App(
    id="d1",
    publisher_id="p1",
    name="Glyco",
    summary="Suivi de la glycémie connecté",
    description="Lecteur de glycémie.",
    category="1",
    ce_class="IIa",
    audience="tous",
    launch_mode="widget",
    website="https://glyco.exemple.fr",
    launch_url="https://glyco.exemple.fr/launch",
    redirect_uris=("https://glyco.exemple.fr/retour",),
    hosts=("glyco.exemple.fr",),
    scopes="launch openid fhirUser patient/Patient.rs patient/Observation.crs",
    purpose="Suivre votre glycémie et la partager avec votre diabétologue.",
    prescribable=True,
    reimbursement="pecan",
)


def test_the_shipped_grid_has_the_four_families_and_cnnum_9s_additions() -> None:
    grid = shipped_grid()
    origins = {f.origin for f in grid.families}
    assert origins == {"socle", "cnnum-9"}
    assert len([f for f in grid.families if f.origin == "socle"]) == 4
    assert {"utilite", "accessibilite", "inclusion", "environnement", "fiabilite", "modele"} <= {
        f.code for f in grid.families
    }
    # every family has at least one criterion
    assert {c.family for c in grid.criteria} == {f.code for f in grid.families}


def test_a_requirement_depends_on_category_and_rises_with_data_access() -> None:
    grid = shipped_grid()
    pentest = grid.criterion("SEC-03")
    assert pentest is not None
    assert pentest.level("1", False) == "exige"
    assert pentest.level("3", False) == "sans_objet"
    assert pentest.level("3", True) == "exige"  # touching the record raises it
    assert {c.id for c in grid.required("1", True)} > {c.id for c in grid.required("3", False)}


def test_a_revised_grid_is_checked_whole() -> None:
    data = shipped_grid().to_json()
    assert Grid.from_json(data) == shipped_grid()
    data["criteria"][0]["levels"] = {"1": "exige"}
    data["criteria"][1]["family"] = "inconnue"
    data["criteria"][2]["id"] = data["criteria"][3]["id"]
    with pytest.raises(GridError) as error:
        Grid.from_json(data)
    assert len(error.value.problems) == 3
    assert any("criteria[0].levels" in p for p in error.value.problems)
    assert any("criteria[1].family" in p for p in error.value.problems)


def test_pathways_low_impact_apps_self_assess_others_are_evaluated() -> None:
    assert pathway(WELLNESS) == "auto"
    assert pathway(DEVICE) == "evaluation"
    # a category 2 app touching the record needs the evaluation too
    booking = replace(WELLNESS, category="2", scopes="openid patient/Appointment.rs")
    assert booking.data_access and pathway(booking) == "evaluation"
    assert not replace(WELLNESS, scopes="openid fhirUser launch").data_access


def test_submission_problems_name_each_missing_piece_beside_its_field() -> None:
    grid = shipped_grid()
    problems = dict(submission_problems(replace(DEVICE, ce_class="", purpose=""), grid))
    assert "classe_ce" in problems and "finalite" in problems
    assert "critere-SEC-03" in problems
    evidenced = complete(DEVICE, grid)
    assert submission_problems(evidenced, grid) == []
    untested = replace(
        evidenced, assessment={**evidenced.assessment, "SEC-03": Assessment(True, "rapport", "")}
    )
    assert [f for f, _ in submission_problems(untested, grid)] == ["test-SEC-03"]
    unsigned = replace(complete(WELLNESS, grid), commitment=None)
    assert [f for f, _ in submission_problems(unsigned, grid)] == ["engagement"]
    # self-assessment needs no evidence, only the answers and the signed commitment
    answered = {c.id: Assessment(True) for c in grid.required("3", False)}
    assert submission_problems(replace(WELLNESS, assessment=answered), grid) == []


def test_transitions_and_the_changelog() -> None:
    app = transition(DEVICE, "submit", at=10, by="L’éditeur")
    app = transition(app, "take", at=20, by="ANS")
    app = transition(app, "approve_data", at=30, by="ANS", note="Évaluation favorable")
    assert app.state == "listed_data" and app.listed_at == 30
    app = transition(app, "suspend", at=40, by="ANSM", note="Signalement grave")
    assert app.state == "suspended" and app.suspended_from == "listed_data" and app.last_audit == 40
    app = transition(app, "reinstate", at=50, by="ANSM")
    assert app.state == "listed_data" and app.listed_at == 30
    assert [(e.event, e.before, e.after, e.by) for e in app.changelog] == [
        ("submit", "draft", "submitted", "L’éditeur"),
        ("take", "submitted", "under_review", "ANS"),
        ("approve_data", "under_review", "listed_data", "ANS"),
        ("suspend", "listed_data", "suspended", "ANSM"),
        ("reinstate", "suspended", "listed_data", "ANSM"),
    ]
    assert App.from_json(app.to_json()) == app
    with pytest.raises(TransitionRefused):
        transition(DEVICE, "approve", at=1, by="ANS")  # a draft is not under review
    with pytest.raises(TransitionRefused, match="Motivez"):
        transition(app, "suspend", at=60, by="ANSM")  # a suspension says why, publicly
    delisted = transition(app, "delist", at=70, by="ANS", note="Retrait")
    with pytest.raises(TransitionRefused):
        transition(delisted, "reinstate", at=80, by="ANS")


def test_the_catalogue_search_and_filters() -> None:
    listed_device = replace(complete(DEVICE, shipped_grid()), state="listed_data")
    listed_wellness = replace(WELLNESS, state="listed", assessment={"ACC-01": Assessment(True)})
    draft = replace(WELLNESS, id="w2", name="Brouillon")
    apps = [listed_device, listed_wellness, draft]
    assert [a.id for a in search_catalogue(apps, "citoyens", CatalogueFilters())] == ["d1", "w1"]
    assert [a.id for a in search_catalogue(apps, "professionnels", CatalogueFilters())] == ["d1"]
    assert [a.id for a in search_catalogue(apps, "citoyens", CatalogueFilters(q="glycemie"))] == ["d1"]
    assert [a.id for a in search_catalogue(apps, "citoyens", CatalogueFilters(category="3"))] == ["w1"]
    assert [a.id for a in search_catalogue(apps, "citoyens", CatalogueFilters(level="listed_data"))] == ["d1"]
    assert [a.id for a in search_catalogue(apps, "citoyens", CatalogueFilters(criterion="ACC-01"))] == [
        "d1",
        "w1",
    ]
    prescribable = CatalogueFilters.from_query({"prescriptible": "oui", "categorie": "9"})
    assert prescribable.category == "" and prescribable.prescribable
    assert [a.id for a in search_catalogue(apps, "professionnels", prescribable)] == ["d1"]
    assert CatalogueFilters.from_query(prescribable.to_query()) == prescribable


def test_siret_and_hosts() -> None:
    assert siret_valid("732 829 320 00074")
    assert not siret_valid("73282932000075")
    assert not siret_valid("7328293200007")
    assert declared_hosts(["App.Exemple.fr, api.exemple.fr\napp.exemple.fr."]) == (
        "app.exemple.fr",
        "api.exemple.fr",
    )


def test_the_audit_draw_weighs_risk_and_replays_from_its_seed() -> None:
    now = 800 * DAY
    device = replace(DEVICE, state="listed_data", listed_at=now - 400 * DAY)
    wellness = replace(WELLNESS, state="listed", listed_at=now - 10 * DAY)
    risky, calm = risk_of(device, now_us=now, open_reports=2), risk_of(wellness, now_us=now)
    assert risky.weight > 10 * calm.weight
    assert any("accès au dossier" in r for r in risky.reasons) and any(
        "signalements" in r for r in risky.reasons
    )
    risks = [risk_of(replace(wellness, id=f"w{i}"), now_us=now) for i in range(20)] + [risky]
    first = draw(risks, 5, seed=42)
    assert [r.app_id for r in first] == [r.app_id for r in draw(list(reversed(risks)), 5, seed=42)]
    assert len({r.app_id for r in first}) == 5
    # over many draws the risky app is drawn far more often than its share
    hits = sum(1 for seed in range(300) if "d1" in {r.app_id for r in draw(risks, 3, seed)})
    assert hits > 200


def test_the_catalogue_search_finds_an_app_by_its_publishers_name() -> None:
    listed = [
        replace(DEVICE, state="listed_data"),
        replace(WELLNESS, id="w9", publisher_id="p2", state="listed"),
    ]
    names = {"p1": "Glycémie Connect SAS", "p2": "Bien-Être Numérique"}
    found = search_catalogue(listed, "citoyens", CatalogueFilters(q="bien-etre numerique"), names)
    assert [a.id for a in found] == ["w9"]
    assert search_catalogue(listed, "citoyens", CatalogueFilters(q="bien-etre numerique")) == []
