"""Apps offered to professionals (``audience``, ``launch_url``, ``description``) and the EHR
launch token the portal makes for them: bound to one person and one app."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from hygie.auth.errors import OAuthError
from hygie.auth.server import AuthorizationServer, LaunchContext, Subject
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

ISSUER = "http://127.0.0.1:8000"
FHIR = f"{ISSUER}/fhir"
REDIRECT = "https://suivi.example.fr/callback"
LAUNCH_URL = "https://suivi.example.fr/launch"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
SCOPE = "launch openid fhirUser patient/Observation.rs"
DOCTOR = Subject("acc-dr", "professional", fhir_user="Practitioner/dr")
NURSE = Subject("acc-nurse", "professional", fhir_user="Practitioner/nurse")


@pytest.fixture
def server() -> AuthorizationServer:
    def clock() -> int:
        return time.time_ns() // 1000

    return AuthorizationServer(MemoryKeyValueStore(clock), issuer=ISSUER, fhir_base=FHIR, clock=clock)


async def offered_app(server: AuthorizationServer, name: str = "Suivi", **extra: object) -> str:
    client, _ = await server.clients.register(
        name=name,
        scope=SCOPE,
        redirect_uris=[REDIRECT],
        launch_url=LAUNCH_URL,
        audience=["professional"],
        description="  Courbes   de poids. ",
        **extra,  # type: ignore[arg-type]
    )
    return client.client_id


def params(client_id: str, launch: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(8),
        "aud": FHIR,
        "launch": launch,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }


async def test_an_offered_app_is_listed_for_professionals_with_its_metadata(
    server: AuthorizationServer,
) -> None:
    suivi = await offered_app(server, "Suivi")
    agenda = await offered_app(server, "agenda partagé")
    # registered, but not offered: a standalone app and a backend service
    await server.clients.register(name="Autre", scope=SCOPE, redirect_uris=[REDIRECT])
    await server.clients.register(name="Batch", scope="system/*.rs", with_secret=True)
    listed = await server.clients.offered_to("professional")
    assert [c.client_id for c in listed] == [agenda, suivi]  # by name, case-insensitively
    stored = await server.clients.get(suivi)
    assert stored is not None
    assert stored.audience == ("professional",)
    assert stored.launch_url == LAUNCH_URL
    assert stored.description == "Courbes de poids."
    # a suspended app is no longer offered
    await server.clients.set_status(agenda, "suspended")
    assert [c.client_id for c in await server.clients.offered_to("professional")] == [suivi]
    assert await server.clients.offered_to("citizen") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"audience": ["patients"]}, "audience 'patients'"),
        ({"launch_url": None}, "needs a launch URL"),
        ({"launch_url": "http://suivi.example.fr/launch"}, "must be https"),
        ({"launch_url": "https://suivi.example.fr/launch#x"}, "fragment"),
        ({"scope": "openid patient/Observation.rs"}, "'launch' scope"),
        ({"redirect_uris": [], "with_secret": True}, "needs a redirect URI"),
    ],
)
async def test_an_offered_app_must_be_a_launchable_smart_app(
    server: AuthorizationServer, changes: dict[str, object], message: str
) -> None:
    registration: dict[str, object] = {
        "name": "Suivi",
        "scope": SCOPE,
        "redirect_uris": [REDIRECT],
        "launch_url": LAUNCH_URL,
        "audience": ["professional"],
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        await server.clients.register(**registration)  # type: ignore[arg-type]


async def test_the_launch_opens_for_its_app_and_its_person_only(server: AuthorizationServer) -> None:
    app = await offered_app(server)
    other_app = await offered_app(server, "Autre")
    launch = await server.create_launch(
        LaunchContext(patient="p1"), account_id=DOCTOR.account_id, client_id=app
    )
    # another app presenting the launch (it leaked): refused, before anyone signs in
    with pytest.raises(OAuthError, match="another app"):
        await server.validate_authorize(params(other_app, launch))
    request = await server.validate_authorize(params(app, launch))
    assert request.launch is not None and request.launch.patient == "p1"
    assert request.launch_account == DOCTOR.account_id
    # another person signed in on the browser: no code with this patient's context
    with pytest.raises(OAuthError, match="another person") as refused:
        await server.issue_code(request, NURSE)
    assert refused.value.error == "access_denied"
    assert "code=" in await server.issue_code(request, DOCTOR)


def test_client_add_offers_an_app_to_professionals(tmp_path: Path) -> None:
    from hygie.cli import app

    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "client",
            "add",
            "--name",
            "Suivi des constantes",
            "--scope",
            SCOPE,
            "--redirect-uri",
            REDIRECT,
            "--launch-url",
            LAUNCH_URL,
            "--audience",
            "professional",
            "--description",
            "Courbes de poids et de tension.",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert added.exit_code == 0, added.output
    shown = orjson.loads(added.output)
    assert shown["launch_url"] == LAUNCH_URL
    assert shown["audience"] == ["professional"]
    refused = runner.invoke(
        app,
        [
            *("client", "add", "--name", "X", "--scope", SCOPE, "--redirect-uri", REDIRECT),
            *("--audience", "professional", "--data-dir", str(tmp_path)),
        ],
    )
    assert refused.exit_code == 2
    assert "launch URL" in refused.output
