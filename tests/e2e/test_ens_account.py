"""ENS "Connexion et sécurité" in a browser, and a federated sign-in that comes back to the page
that asked for it.

* A citizen changes her password (a wrong current one first: the message stands beside the
  field), turns the second factor on with a code pyotp computes from the key the page shows,
  signs out, signs in again with her new password and a code, and turns the factor off.
* With a FranceConnect-style provider (the real npm ``oidc-provider`` of
  ``tests/federation/oidc_provider.mjs``): from ``/ens/documents`` unsigned, the sign-in page's
  provider button, the provider's own sign-in and consent pages, and back on ``/ens/documents``.

Every page state of Hygie is checked with axe-core; the provider's pages are not Hygie's.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import PASSWORD, ROOT, create_resource, free_port
from hygie.bootstrap import Runtime
from hygie.config import load_settings
from hygie.domain.identity.fr_core import InsTraits, patient_from_traits
from hygie.domain.identity.status import IdentityState
from live_server import start_live_server

LiveHygie = Citizen = Any

NEW_PASSWORD = "Ma nouvelle phrase de passe 2026"
STEP = 30  # seconds of a TOTP step
PROVIDER_SCRIPT = ROOT / "tests" / "federation" / "oidc_provider.mjs"
PROVIDER_PASSWORD = "motdepasse-de-test"  # the provider's accounts' password (oidc_provider.mjs)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


def code_after(secret: str, used: int | None) -> tuple[str, int]:
    """A code the server accepts now (steps now-1 … now+1) of a step after ``used`` — a step is
    used once per account — and its step; waits for the clock when none is left. The previous
    step is chosen only while it stays valid for a few seconds more."""
    while True:
        now = time.time()
        current = int(now // STEP)
        earliest = current - 1 if now % STEP < STEP - 5 else current
        step = max(earliest, used + 1) if used is not None else earliest
        if step <= current + 1:
            return pyotp.TOTP(secret).at(step * STEP), step
        time.sleep(STEP - now % STEP + 0.2)


def submit(page: Any, name: str) -> None:
    page.get_by_role("button", name=name).click()
    page.wait_for_load_state()


def test_a_citizen_changes_her_password_and_turns_the_second_factor_on_then_off(
    page: Any, hygie: LiveHygie, citizen: Citizen, shots: Path
) -> None:
    page.goto(f"{hygie.base}/ens/compte")
    fill_sign_in(page, citizen.login, citizen.password)
    page.wait_for_url(f"{hygie.base}/ens/compte")
    main = page.locator("main")
    assert citizen.login in main.inner_text()
    assert page.locator("#etat-double-authentification").text_content().strip() == "Désactivée"
    assert page.locator("#dernieres-connexions tbody tr").first.inner_text().split("\t")[-1].strip() == (
        "Mot de passe"
    )
    assert_accessible(page, "account security")
    page.screenshot(path=str(shots / "ens-compte.png"), full_page=True)

    # the password: a wrong current one first
    page.get_by_role("link", name="Changer mon mot de passe").click()
    page.wait_for_url(f"{hygie.base}/ens/compte/mot-de-passe")
    assert_accessible(page, "change of password")
    page.fill("#mot_de_passe_actuel", "pas le bon mot de passe")
    page.fill("#nouveau_mot_de_passe", NEW_PASSWORD)
    page.fill("#confirmation", NEW_PASSWORD)
    submit(page, "Changer le mot de passe")
    assert page.locator("#mot_de_passe_actuel-erreur").inner_text() == "Le mot de passe actuel est incorrect."
    assert page.locator("#nouveau_mot_de_passe").input_value() == ""  # a password is never shown again
    assert_accessible(page, "change of password (refused)")
    page.screenshot(path=str(shots / "ens-compte-mot-de-passe.png"), full_page=True)
    page.fill("#mot_de_passe_actuel", citizen.password)
    page.fill("#nouveau_mot_de_passe", NEW_PASSWORD)
    page.fill("#confirmation", NEW_PASSWORD)
    submit(page, "Changer le mot de passe")
    page.wait_for_url(f"{hygie.base}/ens/compte")
    assert "Votre mot de passe est changé" in main.inner_text()
    assert_accessible(page, "account security (password changed)")

    # the second factor: the key shown, a code from it
    submit(page, "Activer la double authentification")
    page.wait_for_url(f"{hygie.base}/ens/compte/double-authentification")
    assert page.locator("#qr-totp").get_attribute("src").startswith("data:image/svg+xml")
    secret = page.locator("#cle-totp").inner_text().replace(" ", "")
    assert_accessible(page, "second factor enrolment")
    page.screenshot(path=str(shots / "ens-compte-double-authentification.png"), full_page=True)
    code, used = code_after(secret, None)
    page.fill("#code", code)
    submit(page, "Activer")
    page.wait_for_url(f"{hygie.base}/ens/compte")
    assert "La double authentification est activée" in main.inner_text()
    assert page.locator("#etat-double-authentification").text_content().strip() == "Activée"
    assert_accessible(page, "account security (second factor on)")

    # signed out, then in again: the new password and a code
    submit(page, "Se déconnecter")
    page.goto(f"{hygie.base}/ens/compte")
    page.wait_for_selector("#identifiant")
    page.fill("#identifiant", citizen.login)
    page.fill("#mot-de-passe", NEW_PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#code")
    assert_accessible(page, "second factor at sign-in")
    code, used = code_after(secret, used)
    page.fill("#code", code)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{hygie.base}/ens/compte")
    first = page.locator("#dernieres-connexions tbody tr").first.inner_text()
    assert "Mot de passe et code de vérification" in first

    # off again: the password and a current code
    page.get_by_role("link", name="Désactiver la double authentification").click()
    page.wait_for_url(f"{hygie.base}/ens/compte/double-authentification/desactiver")
    assert_accessible(page, "second factor off")
    page.fill("#mot_de_passe", NEW_PASSWORD)
    code, used = code_after(secret, used)
    page.fill("#code", code)
    submit(page, "Désactiver")
    page.wait_for_url(f"{hygie.base}/ens/compte")
    assert "La double authentification est désactivée" in main.inner_text()
    assert page.locator("#etat-double-authentification").text_content().strip() == "Désactivée"
    assert_accessible(page, "account security (second factor off)")
    accounts = hygie.runtime.accounts
    assert accounts is not None
    subjects = [
        m.subject for m in hygie.call(accounts.outbox.pending(due_only=False)) if m.to == citizen.login
    ]
    assert subjects == [
        "Hygie : votre mot de passe a été changé",
        "Hygie : double authentification activée",
        "Hygie : double authentification désactivée",
    ]


# -- a federated sign-in from a portal page -------------------------------------------------------


@dataclass
class Federated:
    base: str
    runtime: Runtime
    call: Any
    login_label: str


@pytest.fixture(scope="module")
def federated_hygie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federated]:
    """The node providers, and a Hygie whose sign-in page offers the FranceConnect-like one
    (configured as in production, through ``HYGIE_FEDERATION_PROVIDERS``), with Claire MARTIN's
    FR Core Patient and account."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node and node_modules/oidc-provider are needed: run scripts/setup")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [node, str(PROVIDER_SCRIPT), str(free_port()), str(free_port()), base],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            pytest.fail(f"oidc_provider.mjs did not start: {line!r}")
        issuers = json.loads(line[len("READY ") :])
        label = "S’identifier avec FranceConnect"
        provider = {
            "name": "franceconnect",
            "label": label,
            "issuer": issuers["franceconnect"],
            "client_id": "hygie-franceconnect",
            "client_secret": "secret-franceconnect-de-test-0123456789abcdef",
            "kind": "citizen",
            "scope": "openid identite_pivot",
            "acr_values": "eidas2",
            "token_auth_method": "client_secret_post",
        }
        data = tmp_path_factory.mktemp("hygie-federated")
        settings = load_settings(
            data_dir=data, database_url=f"sqlite:///{data / 'hygie.sqlite3'}", base_url=base
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HYGIE_FEDERATION_PROVIDERS", json.dumps([provider]))
            server = start_live_server(settings, port)  # the routes are built at start-up
        try:
            patient = patient_from_traits(
                InsTraits(
                    birth_name="MARTIN",
                    birth_given_names=("Claire", "Marie"),
                    gender="female",
                    birth_date=date(1985, 3, 14),
                    birth_place_code="75056",
                ),
                None,
                IdentityState(),
            )
            patient_id = server.call(create_resource(server.runtime, patient))
            assert server.runtime.accounts is not None
            server.call(
                server.runtime.accounts.create(
                    "citizen", "claire.fc@example.fr", PASSWORD, patient_id=patient_id
                )
            )
            yield Federated(base, server.runtime, server.call, label)
        finally:
            server.stop()
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_federated_sign_in_comes_back_to_the_page_that_asked_for_it(
    page: Any, federated_hygie: Federated, shots: Path
) -> None:
    fed = federated_hygie
    page.goto(f"{fed.base}/ens/documents")
    page.wait_for_url(f"{fed.base}/connexion?retour=%2Fens%2Fdocuments")
    button = page.get_by_role("link", name=fed.login_label)
    assert "retour=%2Fens%2Fdocuments" in button.get_attribute("href")
    assert_accessible(page, "sign-in with a provider")
    page.screenshot(path=str(shots / "connexion-fournisseur.png"), full_page=True)
    button.click()
    # the provider's own pages (not Hygie's)
    page.wait_for_selector("#login")
    page.fill("#login", "claire")
    page.fill("#password", PROVIDER_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("button", name="Continuer").click()
    page.wait_for_url(f"{fed.base}/ens/documents")
    assert page.locator("h1").inner_text() == "Mes documents"
    assert_accessible(page, "documents after a federated sign-in")
    page.goto(f"{fed.base}/ens/compte")
    linked = page.locator("#services-lies").inner_text()
    assert "S’identifier avec FranceConnect" in linked
    first = page.locator("#dernieres-connexions tbody tr").first.inner_text()
    assert "Service d’identification (S’identifier avec FranceConnect)" in first
    assert_accessible(page, "account security with a provider")
