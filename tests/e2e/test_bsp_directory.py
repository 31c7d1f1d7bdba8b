"""The professionals' directory (``/bsp/annuaire``) on the demo directory: nearest first, with the
MSSanté mailboxes professionals write to (citizens never see them)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect
from test_bsp_record import sign_in_pro

from browser import assert_accessible, screenshots_dir
from conftest import LiveHygie, People
from hygie.demo.directory import Directory


def test_professionals_find_colleagues_near_lyon_with_their_mailboxes(
    page: Any,
    hygie: LiveHygie,
    people: People,
    directory: Directory,
    tmp_path: Any,
) -> None:
    sign_in_pro(page, hygie, people, "/bsp/annuaire")
    assert_accessible(page, "BSP directory (empty form)")
    page.fill("#qui", "infirmier")
    page.fill("#ou", "Lyon")
    page.select_option("#rayon", "20")
    page.locator("#recherche-annuaire button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/bsp/annuaire\?.*ou=Lyon.*"))
    results = page.locator("#liste-annuaire > li")
    expect(results.first).to_be_visible()
    mailboxes = page.locator("#liste-annuaire").inner_text()
    assert "mssante.fr" in mailboxes  # the secure mailboxes professionals write to
    assert_accessible(page, "BSP directory results")
    page.screenshot(path=str(screenshots_dir(tmp_path) / "bsp-annuaire.png"), full_page=True)
