"""The minor's-space demo on an in-memory runtime: the child's two parents as legal
representatives, a paediatric care team, and the parents' accounts bound to them — once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hygie.auth.accounts import AccountService
from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.demo.ens_family import create_family_accounts, seed_demo
from hygie.domain.access import Caller
from hygie.fhir.interactions import FhirService
from hygie.stores.files import MemoryBlobStore
from hygie.stores.kv import MemoryKeyValueStore
from hygie.stores.memory import MemoryResourceStore
from hygie.web.portal.door import Door

pytestmark = pytest.mark.anyio
OPERATOR = Caller.operator("tests")


async def test_the_childs_parents_and_their_accounts_are_added_once(tmp_path: Path) -> None:
    store = MemoryResourceStore()
    service = FhirService(store, base_url="http://demo/fhir")
    runtime = Runtime(
        load_settings(data_dir=tmp_path, database_url="sqlite://"), store, MemoryBlobStore(), service
    )
    door = Door(service)
    lea = await door.create(
        OPERATOR,
        {
            "resourceType": "Patient",
            "name": [{"family": "BERNARD", "given": ["Léa"]}],
            "birthDate": "2016-09-21",
        },
    )
    doctor = await door.create(OPERATOR, {"resourceType": "Practitioner", "name": [{"family": "PEDIATRE"}]})
    await seed_demo(runtime, lea["id"], doctor["id"])
    await seed_demo(runtime, lea["id"], doctor["id"])  # a second run adds nothing

    parents = await door.search(OPERATOR, "RelatedPerson", [("patient", lea["id"])])
    codes = sorted(p["relationship"][0]["coding"][0]["code"] for p in parents)
    assert codes == ["FTH", "MTH"]
    teams = await door.search(OPERATOR, "CareTeam", [("patient", lea["id"])])
    assert (
        len(teams) == 1
        and teams[0]["participant"][0]["member"]["reference"] == f"Practitioner/{doctor['id']}"
    )
    # both parents are the child's legal representatives (until she comes of age)
    relations = await store.relations(
        lea["id"], [f"RelatedPerson/{p['id']}" for p in parents], now_us=service.clock()
    )
    assert sorted(kind for kind, _, _ in relations) == ["representative", "representative"]

    accounts = AccountService(MemoryKeyValueStore())
    logins = await create_family_accounts(service, accounts, lea["id"])
    again = await create_family_accounts(service, accounts, lea["id"])
    assert (
        [d.login for d in logins]
        == [d.login for d in again]
        == [
            "parent1.bernard@demo.hygie.fr",
            "parent2.bernard@demo.hygie.fr",
        ]
    )
    for login, parent in zip(
        logins, sorted(parents, key=lambda p: p["relationship"][0]["coding"][0]["code"] != "MTH"), strict=True
    ):
        account = await accounts.by_login(login.login)
        assert account is not None and account.related_ids == (parent["id"],)
    assert len(await door.search(OPERATOR, "RelatedPerson", [("patient", lea["id"])])) == 2
