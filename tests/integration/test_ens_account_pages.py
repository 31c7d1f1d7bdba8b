"""ENS "Connexion et sécurité" over HTTP (the real ASGI app, every store backend).

A citizen changes her password (her other session ends, this one stays), turns the second factor
on with a code computed from the secret the page shows and off again, removes and allows again a
provider; refused forms say why beside the field and never echo a password; a parent acting in
her child's space sees her own account.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import orjson
import pyotp
import pytest

from hygie.bootstrap import Runtime
from hygie.domain.access import Caller
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

pytestmark = pytest.mark.anyio

PASSWORD = "Un mot de passe solide 42"
NEW_PASSWORD = "Une autre phrase de passe 2026"
ISSUER = "https://fc.exemple.fr"
STEP = 30  # seconds of a TOTP step


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no field {name} in {html[:400]}"
    return m.group(1)


async def create(runtime: Runtime, resource: dict[str, Any]) -> str:
    response = await route(
        runtime.service,
        FhirRequest("POST", resource["resourceType"], resource=resource, caller=Caller.operator("tests")),
    )
    assert response.status == 201, response.body
    body = orjson.loads(response.body) if isinstance(response.body, bytes) else response.body
    return str(body["id"])


async def citizen(runtime: Runtime, login: str, family: str = "MARTIN", given: str = "Claire") -> str:
    patient = await create(
        runtime,
        {
            "resourceType": "Patient",
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": "female",
            "birthDate": "1985-03-14",
        },
    )
    assert runtime.accounts is not None
    account, _ = await runtime.accounts.create("citizen", login, PASSWORD, patient_id=patient)
    return account.id


async def sign_in(
    http: httpx.AsyncClient, login: str, password: str = PASSWORD, code_of: str | None = None
) -> httpx.Response:
    """Sign in from a portal page: back on it afterwards."""
    asked = await http.get("/ens/compte")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/connexion?retour=%2Fens%2Fcompte"
    page = await http.get(asked.headers["location"])
    assert field(page.text, "retour") == "/ens/compte"
    r = await http.post(
        "/connexion",
        data={
            "csrf": field(page.text, "csrf"),
            "retour": "/ens/compte",
            "identifiant": login,
            "mot_de_passe": password,
        },
    )
    if code_of is not None:
        assert r.status_code == 200 and 'name="code"' in r.text
        r = await http.post(
            "/connexion/code",
            data={"csrf": field(r.text, "csrf"), "retour": "/ens/compte", "code": code_of},
        )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ens/compte"
    return r


def code_after(secret: str, used: int | None) -> tuple[str, int]:
    """A code the server accepts now (steps now-1 … now+1) of a step after ``used`` (a step is
    used once), and its step; waits for the clock when every acceptable step was used. The
    previous step is chosen only while it stays valid for a few seconds more."""
    while True:
        now = time.time()
        current = int(now // STEP)
        earliest = current - 1 if now % STEP < STEP - 5 else current
        step = max(earliest, (used + 1) if used is not None else earliest)
        if step <= current + 1:
            return pyotp.TOTP(secret).at(step * STEP), step
        time.sleep(STEP - now % STEP + 0.2)


def wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + d * STEP) for d in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in valid)


def new_browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same app (its own cookies), without the API token."""
    return httpx.AsyncClient(transport=client._transport, base_url="http://testserver")


async def form_of(http: httpx.AsyncClient, path: str) -> dict[str, str]:
    page = await http.get(path)
    assert page.status_code == 200, page.text
    return {"csrf": field(page.text, "csrf"), "jeton": field(page.text, "jeton")}


async def test_change_password_ends_the_other_sessions_and_keeps_this_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account_id = await citizen(runtime, "claire@exemple.fr")
    async with new_browser(client) as here, new_browser(client) as elsewhere:
        await sign_in(here, "claire@exemple.fr")
        await sign_in(elsewhere, "claire@exemple.fr")
        page = await here.get("/ens/compte")
        assert page.status_code == 200
        assert "claire@exemple.fr" in page.text and "Désactivée" in page.text
        assert "Mot de passe" in page.text and "dernieres-connexions" in page.text

        hidden = await form_of(here, "/ens/compte/mot-de-passe")
        wrong = await here.post(
            "/ens/compte/mot-de-passe",
            data={
                **hidden,
                "mot_de_passe_actuel": "pas le bon mot de passe",
                "nouveau_mot_de_passe": NEW_PASSWORD,
                "confirmation": NEW_PASSWORD,
            },
        )
        assert wrong.status_code == 422
        assert 'id="mot_de_passe_actuel-erreur"' in wrong.text
        assert "Le mot de passe actuel est incorrect." in wrong.text
        assert NEW_PASSWORD not in wrong.text and "pas le bon mot de passe" not in wrong.text
        # the same form, corrected, may be sent again (its jeton was released)
        mismatch = await here.post(
            "/ens/compte/mot-de-passe",
            data={
                **hidden,
                "mot_de_passe_actuel": PASSWORD,
                "nouveau_mot_de_passe": NEW_PASSWORD,
                "confirmation": NEW_PASSWORD + "x",
            },
        )
        assert mismatch.status_code == 422
        assert "ne sont pas identiques" in mismatch.text and 'id="confirmation-erreur"' in mismatch.text
        weak = await here.post(
            "/ens/compte/mot-de-passe",
            data={
                **hidden,
                "mot_de_passe_actuel": PASSWORD,
                "nouveau_mot_de_passe": "azerty",
                "confirmation": "azerty",
            },
        )
        assert weak.status_code == 422 and "au moins 12 caractères" in weak.text
        assert runtime.accounts is not None
        assert (await runtime.accounts.authenticate("claire@exemple.fr", PASSWORD, client_ip="t")).ok

        done = await here.post(
            "/ens/compte/mot-de-passe",
            data={
                **hidden,
                "mot_de_passe_actuel": PASSWORD,
                "nouveau_mot_de_passe": NEW_PASSWORD,
                "confirmation": NEW_PASSWORD,
            },
        )
        assert done.status_code == 303 and done.headers["location"] == "/ens/compte"
        assert "hygie_session=" in done.headers["set-cookie"]  # a new session for this browser
        shown = await here.get("/ens/compte")
        assert shown.status_code == 200
        assert "Votre mot de passe est changé" in shown.text
        # the other browser's session is over: back to the sign-in page
        ended = await elsewhere.get("/ens/compte")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/connexion")
    assert not (await runtime.accounts.authenticate("claire@exemple.fr", PASSWORD, client_ip="t")).ok
    mails = [m for m in await runtime.accounts.outbox.pending(due_only=False) if m.to == "claire@exemple.fr"]
    assert [m.subject for m in mails] == ["Hygie : votre mot de passe a été changé"]
    assert NEW_PASSWORD not in mails[0].body
    methods = [s.method for s in await runtime.accounts.sign_ins(account_id)]
    assert methods[:3] == ["pwd", "pwd", "pwd"]


async def test_second_factor_on_with_the_shown_secret_then_off(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await citizen(runtime, "claire@exemple.fr")
    async with new_browser(client) as http:
        await sign_in(http, "claire@exemple.fr")
        begin = await http.post(
            "/ens/compte/double-authentification/activer", data=await form_of(http, "/ens/compte")
        )
        assert begin.status_code == 303
        assert begin.headers["location"] == "/ens/compte/double-authentification"
        page = await http.get("/ens/compte/double-authentification")
        assert page.status_code == 200
        assert re.search(r'<img class="ens-qr" id="qr-totp" src="data:image/svg\+xml', page.text)
        assert "style=" not in page.text.split("<main", 1)[1]  # the CSP forbids inline styles
        secret_text = re.search(r'id="cle-totp">([A-Z2-7 ]+)<', page.text)
        assert secret_text
        secret = secret_text.group(1).replace(" ", "")
        assert len(secret) == 32
        hidden = {"csrf": field(page.text, "csrf"), "jeton": field(page.text, "jeton")}
        refused = await http.post(
            "/ens/compte/double-authentification", data={**hidden, "code": wrong_code(secret)}
        )
        assert refused.status_code == 422 and 'id="code-erreur"' in refused.text
        assert secret_text.group(1) in refused.text  # the same secret, still waiting
        code, used = code_after(secret, None)
        on = await http.post("/ens/compte/double-authentification", data={**hidden, "code": code})
        assert on.status_code == 303
        shown = await http.get("/ens/compte")
        assert "La double authentification est activée" in shown.text and "Activée" in shown.text
        assert (await http.get("/ens/compte/double-authentification")).status_code == 303

        off_form = await form_of(http, "/ens/compte/double-authentification/desactiver")
        bad = await http.post(
            "/ens/compte/double-authentification/desactiver",
            data={**off_form, "mot_de_passe": "mauvais mot de passe", "code": wrong_code(secret)},
        )
        assert bad.status_code == 422 and 'id="mot_de_passe-erreur"' in bad.text
        assert "mauvais mot de passe" not in bad.text
    # a new sign-in asks for the code; the enrolment's code is spent, a later one signs in
    async with new_browser(client) as again:
        code, used = code_after(secret, used)
        await sign_in(again, "claire@exemple.fr", code_of=code)
        off_form = await form_of(again, "/ens/compte/double-authentification/desactiver")
        code, used = code_after(secret, used)
        off = await again.post(
            "/ens/compte/double-authentification/desactiver",
            data={**off_form, "mot_de_passe": PASSWORD, "code": code},
        )
        assert off.status_code == 303, off.text
        assert "Désactivée" in (await again.get("/ens/compte")).text
    assert runtime.accounts is not None
    subjects = [m.subject for m in await runtime.accounts.outbox.pending(due_only=False)]
    assert subjects == [
        "Hygie : double authentification activée",
        "Hygie : double authentification désactivée",
    ]


async def test_providers_are_listed_removed_and_allowed_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    account_id = await citizen(runtime, "claire@exemple.fr")
    assert runtime.accounts is not None
    await runtime.accounts.link_federated(account_id, ISSUER, "sub-claire")
    async with new_browser(client) as http:
        await sign_in(http, "claire@exemple.fr")
        page = await http.get("/ens/compte")
        assert 'id="services-lies"' in page.text and f"Retirer {ISSUER} de mon compte" in page.text
        hidden = {"csrf": field(page.text, "csrf"), "jeton": field(page.text, "jeton")}
        stale = await http.post(
            "/ens/compte/identites/retirer",
            data={**hidden, "identite": "0", "fournisseur": "https://autre.fr"},
        )
        assert stale.status_code == 409
        removed = await http.post(
            "/ens/compte/identites/retirer", data={**hidden, "identite": "0", "fournisseur": ISSUER}
        )
        assert removed.status_code == 303
        page = await http.get("/ens/compte")
        assert "est retiré de votre compte" in page.text
        assert 'id="services-retires"' in page.text and 'id="services-lies"' not in page.text
        assert await runtime.accounts.by_federated(ISSUER, "sub-claire") is None
        hidden = {"csrf": field(page.text, "csrf"), "jeton": field(page.text, "jeton")}
        allowed = await http.post(
            "/ens/compte/identites/autoriser", data={**hidden, "identite": "0", "fournisseur": ISSUER}
        )
        assert allowed.status_code == 303
        account = await runtime.accounts.get(account_id)
        assert account is not None and account.refused_federated == () and account.federated == ()
        # no CSRF token: refused, nothing changes
        forged = await http.post(
            "/ens/compte/identites/autoriser", data={"identite": "0", "fournisseur": ISSUER}
        )
        assert forged.status_code == 400


async def test_a_parent_in_her_childs_space_sees_her_own_account(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.accounts is not None
    child_account = await citizen(runtime, "lea@exemple.fr", family="BERNARD", given="Léa")
    child = await runtime.accounts.get(child_account)
    assert child is not None and child.patient_id
    parent_account = await citizen(runtime, "sophie@exemple.fr", family="BERNARD", given="Sophie")
    related = await create(
        runtime,
        {
            "resourceType": "RelatedPerson",
            "active": True,
            "patient": {"reference": f"Patient/{child.patient_id}"},
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
            ],
            "name": [{"family": "BERNARD", "given": ["Sophie"]}],
        },
    )
    await runtime.accounts.link_related(parent_account, related)
    await runtime.accounts.link_federated(child_account, ISSUER, "sub-lea")
    async with new_browser(client) as http:
        await sign_in(http, "sophie@exemple.fr")
        home = await http.get("/ens")
        chosen = await http.post(
            "/ens/espace",
            data={"csrf": field(home.text, "csrf"), "patient": child.patient_id, "retour": "/ens/compte"},
        )
        assert chosen.status_code == 303
        page = await http.get("/ens/compte")
        assert page.status_code == 200
        assert "Vous agissez pour Léa BERNARD" in page.text
        assert '<strong id="identifiant-compte">sophie@exemple.fr</strong>' in page.text
        assert "lea@exemple.fr" not in page.text and ISSUER not in page.text
        assert "et non celui de Léa BERNARD" in page.text
        # removing the child's provider by forging the form reaches only her own (empty) list
        hidden = {"csrf": field(page.text, "csrf"), "jeton": field(page.text, "jeton")}
        forged = await http.post(
            "/ens/compte/identites/retirer", data={**hidden, "identite": "0", "fournisseur": ISSUER}
        )
        assert forged.status_code == 409
    assert (await runtime.accounts.by_federated(ISSUER, "sub-lea")) is not None
