"""Which app wrote a resource: the server's ``meta.source``, and only the server's."""

from __future__ import annotations

from typing import Any

from hygie.domain.access import PORTAL_CLIENT, Caller
from hygie.domain.policy import Principal
from hygie.domain.provenance import APP_SOURCE_PREFIX, app_of, app_source, with_provenance


def observation(meta: dict[str, Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "Poids"}}
    if meta is not None:
        resource["meta"] = meta
    return resource


def test_the_source_names_the_app() -> None:
    assert app_source("balance") == "urn:hygie:app:balance"
    assert APP_SOURCE_PREFIX == "urn:hygie:app:"
    assert app_of(observation({"source": "urn:hygie:app:balance"})) == "balance"
    assert app_of(observation({"source": "urn:hygie:app:"})) is None
    assert app_of(observation({"source": "https://lab.example/lis"})) is None
    assert app_of(observation()) is None


def test_an_apps_write_gets_its_source_whatever_it_sent() -> None:
    sent = observation({"source": "urn:hygie:app:another", "profile": ["http://x/p"]})
    stored = with_provenance(sent, "balance")
    assert stored["meta"] == {"source": "urn:hygie:app:balance", "profile": ["http://x/p"]}
    assert sent["meta"]["source"] == "urn:hygie:app:another"  # the caller's dict is left alone
    assert with_provenance(observation(), "balance")["meta"] == {"source": "urn:hygie:app:balance"}
    same = observation({"source": "urn:hygie:app:balance"})
    assert with_provenance(same, "balance") is same


def test_anyone_elses_write_loses_a_forged_app_source_and_keeps_its_own() -> None:
    forged = observation({"source": "urn:hygie:app:balance", "tag": [{"code": "x"}]})
    assert with_provenance(forged, None)["meta"] == {"tag": [{"code": "x"}]}
    own = observation({"source": "https://lab.example/lis"})
    assert with_provenance(own, None) is own
    plain = observation()
    assert with_provenance(plain, None) is plain


def test_which_callers_are_apps() -> None:
    patient = Principal("patient", "Patient/p")
    assert Caller.of(patient, client_id="balance").app == "balance"
    assert Caller.of(patient, client_id=PORTAL_CLIENT).app is None  # Hygie's own portals
    assert Caller.of(patient).app is None
    assert Caller.operator().app is None
    system = Principal("system", "Device/lis")
    assert Caller.of(system, client_id="lis").app == "lis"


def test_a_restore_by_the_operator_keeps_the_recorded_provenance() -> None:
    from hygie.domain.provenance import app_source, with_provenance

    recorded = {"resourceType": "Observation", "meta": {"source": app_source("app-1")}}
    assert with_provenance(recorded, None, keep=True) is recorded
    assert "source" not in with_provenance(recorded, None)["meta"]
    assert with_provenance(recorded, "app-2", keep=True)["meta"]["source"] == app_source("app-2")
