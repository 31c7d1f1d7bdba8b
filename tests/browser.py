"""Helpers for browser tests (Playwright driving Debian's Chromium): accessibility, sign-in,
the guide's screenshots.

Every page a test visits is checked with axe-core (WCAG 2.0/2.1 A and AA): zero violations.
With ``HYGIE_GUIDE_SCREENSHOTS=1`` the tests write the user guide's screenshots into
``docs/guide/img`` (``scripts/screenshots`` does so).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp

ROOT = Path(__file__).resolve().parents[1]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
GUIDE_IMG = ROOT / "docs" / "guide" / "img"


def screenshots_dir(fallback: Path) -> Path:
    """``docs/guide/img`` when the guide's screenshots are asked for, else ``fallback``."""
    if os.environ.get("HYGIE_GUIDE_SCREENSHOTS") == "1":
        GUIDE_IMG.mkdir(parents=True, exist_ok=True)
        return GUIDE_IMG
    return fallback


def assert_accessible(page: Any, what: str) -> None:
    """Inject axe-core into the page (through the DevTools protocol: the page's CSP forbids
    inline scripts) and fail on any WCAG 2.0/2.1 A or AA violation."""
    page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        AXE_TAGS,
    )
    assert violations == [], f"axe-core on the {what} page: {violations}"


def fill_sign_in(page: Any, login: str, password: str, totp_secret: str | None = None) -> None:
    """On Hygie's sign-in page: identifiers, then (when there is one) the second factor."""
    page.wait_for_selector("#identifiant")
    page.fill("#identifiant", login)
    page.fill("#mot-de-passe", password)
    page.locator("main form button[type=submit]").click()
    if totp_secret is not None:
        page.wait_for_selector("#code")
        page.fill("#code", pyotp.TOTP(totp_secret).now())
        page.locator("main form button[type=submit]").click()


def visit(page: Any, url: str, what: str, *, shot: Path | None = None) -> None:
    """Open a page, check it has no accessibility violation, and (optionally) screenshot it."""
    response = page.goto(url)
    assert response is not None and response.status < 400, f"{url}: HTTP {response and response.status}"
    assert_accessible(page, what)
    if shot is not None:
        page.screenshot(path=str(shot), full_page=True)
