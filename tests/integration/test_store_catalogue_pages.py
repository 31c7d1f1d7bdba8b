"""The catalogue read path: decoded once per change (and every process sees a change at once),
and served a page at a time."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from hygie.auth.clients import ClientRegistry
from hygie.domain.store.catalogue import App, Assessment
from hygie.store.service import StoreService
from hygie.stores.kv import SqliteKeyValueStore
from hygie.web.portal.store import PAGE_SIZE, catalogue_view

pytestmark = pytest.mark.anyio


def clock() -> int:
    return time.time_ns() // 1000


async def listed(store: StoreService, count: int) -> list[App]:
    publisher = await store.create_publisher("Bien-Être Numérique", "55210055400013", "a@b.fr")
    member = await store.add_member("editeur", "publisher", publisher_id=publisher.id)
    grid = await store.grid()
    out = []
    for i in range(count):
        app = App(
            id="",
            publisher_id="",
            name=f"Marche {i:03d}",
            summary="Compter ses pas chaque jour.",
            description="Un podomètre.",
            category="3",
            website="https://pas.exemple.fr",
            hosts=("pas.exemple.fr",),
            commitment={"by": "Anne", "role": "Présidente", "at": 1, "text": "Je m’engage"},
            assessment={c.id: Assessment(True) for c in grid.required("3", False)},
        )
        draft = await store.save_draft(member, app)
        out.append(await store.submit(member, draft.id))
    return out


async def test_two_processes_see_each_others_changes_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.sqlite3")
    first = StoreService(SqliteKeyValueStore(path), ClientRegistry(SqliteKeyValueStore(path), clock), clock)
    second = StoreService(SqliteKeyValueStore(path), ClientRegistry(SqliteKeyValueStore(path), clock), clock)
    [app] = await listed(first, 1)
    assert [a.state for a in await second.apps()] == ["listed"]
    authority = await first.add_member("ans", "authority", agency="ans")
    await first.decide(authority, app.id, "suspend", "Signalement")
    # the second process decoded the catalogue before: the new mark makes it read again
    assert [a.state for a in await second.apps()] == ["suspended"]
    again = await second.apps()
    assert again == await second.apps()
    report = await second.report(
        app.id, "L’application plante au lancement.", declared=None, reporter=None, reporter_kind="anonyme"
    )
    assert [r["id"] for r in await first.reports(app_id=app.id)] == [report["id"]]


async def test_the_catalogue_is_served_a_page_at_a_time(tmp_path: Path) -> None:
    kv = SqliteKeyValueStore(str(tmp_path / "kv.sqlite3"))
    store = StoreService(kv, ClientRegistry(kv, clock), clock)
    apps = await listed(store, PAGE_SIZE * 2 + 5)
    first = await catalogue_view(store, "citoyens", {})
    assert (first.total, first.page, first.pages, len(first.cards)) == (len(apps), 1, 3, PAGE_SIZE)
    assert [c.name for c in first.cards][:2] == ["Marche 000", "Marche 001"]
    last = await catalogue_view(store, "citoyens", {"page": "3"})
    assert [c.name for c in last.cards] == [
        f"Marche {i:03d}" for i in range(PAGE_SIZE * 2, PAGE_SIZE * 2 + 5)
    ]
    assert (await catalogue_view(store, "citoyens", {"page": "99"})).page == 3
    assert (await catalogue_view(store, "citoyens", {"page": "-1"})).page == 1
    searched = await catalogue_view(store, "citoyens", {"q": "marche 04", "page": "1"})
    assert searched.total == 11 and searched.pages == 1  # 004 and 040 to 049
    assert first.page_query(2) == "page=2"
    assert "q=marche+04" in searched.page_query(1)
    assert replace(first.filters) == first.filters
