"""The Store santé's probes without a network: the address rules (``uri_problem``,
``public_address``), and the registration, scope and conformance checks on real clients and
resources. The probes that fetch are in ``tests/integration/test_store_probes.py``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from hygie.auth.clients import Client, ClientRegistry
from hygie.domain.ens.vitals import MEASURES, Entry, observation
from hygie.store.probes import CHECKS, Check, Prober, ProbeTarget, public_address, uri_problem
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

HOSTS = ("app.example.fr", "Auth.Example.fr")
SCOPE = "launch openid fhirUser patient/Observation.rs"
PATIENT = "Patient/lea"
WHEN = datetime(2025, 3, 14, 8, 30, tzinfo=UTC)


def registry() -> ClientRegistry:
    return ClientRegistry(MemoryKeyValueStore(), lambda: 1_700_000_000_000_000)


async def smart_app(**extra: Any) -> Client:
    options: dict[str, Any] = {
        "name": "Suivi",
        "scope": SCOPE,
        "redirect_uris": ["https://app.example.fr/callback"],
        **extra,
    }
    client, _ = await registry().register(**options)
    return client


async def run(target: ProbeTarget) -> dict[str, Check]:
    checks = await Prober(timeout_s=1.0).probe(target)
    assert [c.code for c in checks] == list(CHECKS)
    assert [c.label for c in checks] == list(CHECKS.values())
    return {c.code: c for c in checks}


# --------------------------------------------------------------------------- the address rules
@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.fr/callback",
        "https://APP.example.fr./callback?x=1",  # case and a trailing dot do not change the host
        "https://auth.example.fr:8443/cb",  # declared in another case; the port is not the host
    ],
)
def test_an_https_uri_on_a_declared_public_host_is_accepted(uri: str) -> None:
    assert uri_problem(uri, HOSTS) is None


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://app.example.fr/callback", "HTTPS"),
        ("http://127.0.0.1:8080/callback", "HTTPS"),  # plain http, even on the loopback
        ("ftp://app.example.fr/callback", "HTTPS"),
        ("com.example.app:/callback", "HTTPS"),
        ("https://app.example.fr/callback#frag", "fragment"),
        ("https://user:secret@app.example.fr/callback", "mot de passe"),
        ("https://user@app.example.fr/callback", "identifiant"),
        ("https://app.example.fr\\@evil.example.fr/", "barre oblique inverse"),
        ("https://app.example.fr/ call", "espaces"),
        ("https:///callback", "hôte"),
        ("https://app.example.fr:99999/callback", "illisible"),
        ("https://[::1/callback", "illisible"),
        ("https://10.0.0.8/callback", "adresse IP privée"),
        ("https://192.168.1.20/callback", "adresse IP privée"),
        ("https://172.16.4.1/callback", "adresse IP privée"),
        ("https://127.0.0.1/callback", "adresse IP privée"),
        ("https://127.8.9.10/callback", "adresse IP privée"),
        ("https://169.254.169.254/latest/meta-data/", "adresse IP privée"),
        ("https://0.0.0.0/callback", "adresse IP privée"),
        ("https://100.64.0.1/callback", "adresse IP privée"),  # shared address space (CGNAT)
        ("https://224.0.0.251/callback", "adresse IP privée"),
        ("https://[::1]/callback", "adresse IP privée"),
        ("https://[::]/callback", "adresse IP privée"),
        ("https://[fe80::1]/callback", "adresse IP privée"),
        ("https://[fd00::1]/callback", "adresse IP privée"),
        ("https://[ff02::1]/callback", "adresse IP privée"),
        ("https://[::ffff:127.0.0.1]/callback", "adresse IP privée"),
        ("https://[::ffff:a9fe:a9fe]/callback", "adresse IP privée"),  # mapped 169.254.169.254
        ("https://[64:ff9b::a00:1]/callback", "adresse IP privée"),  # NAT64 of 10.0.0.1
        ("https://[2002:c0a8:101::1]/callback", "adresse IP privée"),  # 6to4 of 192.168.1.1
        ("https://127.1/callback", "forme non standard"),
        ("https://2130706433/callback", "forme non standard"),
        ("https://0x7f.0.0.1/callback", "forme non standard"),
        ("https://localhost/callback", "réseau local"),
        ("https://LOCALHOST./callback", "réseau local"),
        ("https://app.localhost/callback", "réseau local"),
        ("https://foo.local/callback", "réseau local"),
        ("https://metadata.google.internal/callback", "réseau local"),
        ("https://nas.home.arpa/callback", "réseau local"),
        ("https://intranet/callback", "réseau local"),
        ("https://app_1.example.fr/callback", "nom de domaine valide"),
    ],
)
def test_a_uri_that_is_not_https_or_not_public_is_refused(uri: str, words: str) -> None:
    problem = uri_problem(uri)
    assert problem is not None
    assert words in problem


def test_a_host_must_be_one_the_publisher_declared_exactly() -> None:
    assert uri_problem("https://app.example.fr/cb", HOSTS) is None
    for uri in ("https://evil.example.fr/cb", "https://app.example.fr.evil.fr/cb", "https://example.fr/cb"):
        problem = uri_problem(uri, HOSTS)
        assert problem is not None
        assert "hôtes déclarés" in problem
    # without declared hosts only the address rules apply
    assert uri_problem("https://evil.example.fr/cb") is None
    # a public literal address is acceptable when it is the declared host
    assert uri_problem("https://93.184.215.14/cb", ("93.184.215.14",)) is None
    # declaring a private address does not make it acceptable
    problem = uri_problem("https://10.0.0.8/cb", ("10.0.0.8",))
    assert problem is not None
    assert "privée" in problem


def test_unicode_hosts_compare_in_their_ascii_form() -> None:
    assert uri_problem("https://café.example.fr/cb", ("xn--caf-dma.example.fr",)) is None
    assert uri_problem("https://xn--caf-dma.example.fr/cb", ("café.example.fr",)) is None


def test_tests_may_lift_the_guard_but_not_the_declared_hosts() -> None:
    assert uri_problem("http://127.0.0.1:8080/callback", ("127.0.0.1",), allow_private=True) is None
    assert uri_problem("http://localhost:8080/callback", allow_private=True) is None
    problem = uri_problem("http://localhost:8080/callback", ("127.0.0.1",), allow_private=True)
    assert problem is not None
    assert "hôtes déclarés" in problem
    # still never another scheme, a fragment or credentials
    for uri in ("ftp://127.0.0.1/x", "http://127.0.0.1/x#y", "http://a:b@127.0.0.1/x"):
        assert uri_problem(uri, allow_private=True) is not None


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("93.184.215.14", True),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("[2001:4860:4860::8888]", True),
        ("::ffff:8.8.8.8", True),
        ("10.1.2.3", False),
        ("172.31.255.255", False),
        ("192.168.0.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),
        ("0.0.0.0", False),
        ("255.255.255.255", False),
        ("239.1.1.1", False),
        ("240.0.0.1", False),
        ("192.0.2.1", False),  # documentation
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("fec0::1", False),  # site-local (deprecated)
        ("ff05::2", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("not an address", False),
        ("", False),
    ],
)
def test_public_address(ip: str, public: bool) -> None:
    assert public_address(ip) is public


# --------------------------------------------------------------------------- results
def test_a_check_round_trips_through_json() -> None:
    check = Check(
        "scopes", CHECKS["scopes"], False, "portées enregistrées au-delà de la déclaration : launch"
    )
    assert Check.from_json(check.to_json()) == check
    assert check.to_json() == {
        "code": "scopes",
        "label": "Portées limitées à celles déclarées",
        "ok": False,
        "detail": "portées enregistrées au-delà de la déclaration : launch",
    }


async def test_an_app_without_data_exchange_passes_the_registration_checks() -> None:
    checks = await run(ProbeTarget(declared_hosts=(), declared_scopes="", client=None))
    assert all(c.ok for c in checks.values())
    assert checks["launch_url"].detail == "pas d’adresse de lancement déclarée"
    assert "aucune ressource" in checks["conformance"].detail


# --------------------------------------------------------------------------- registration
async def test_an_active_public_client_with_redirect_uris_is_a_valid_registration() -> None:
    client = await smart_app()
    checks = await run(ProbeTarget(HOSTS, SCOPE, client))
    assert checks["registration"].ok, checks["registration"].detail
    assert "client public" in checks["registration"].detail


async def test_a_suspended_or_malformed_registration_fails() -> None:
    client = await smart_app()
    suspended = dataclasses.replace(client, status="suspended")
    check = (await run(ProbeTarget(HOSTS, SCOPE, suspended)))["registration"]
    assert not check.ok
    assert "suspendu" in check.detail
    # a stored record whose redirect URIs were lost, and one whose scopes no longer parse
    broken = dataclasses.replace(client, redirect_uris=(), scope="patient/Nothing.rs")
    check = (await run(ProbeTarget(HOSTS, SCOPE, broken)))["registration"]
    assert not check.ok
    assert "adresse de redirection" in check.detail
    assert "grammaire SMART" in check.detail


async def test_a_key_client_needs_a_public_signing_key_in_its_jwks() -> None:
    rsa = RSAKey.generate_key(2048)
    client = await smart_app(
        jwks={"keys": [rsa.as_dict(private=False, use="sig", alg="RS384")]}, redirect_uris=[]
    )
    assert client.auth_method == "private_key_jwt"
    check = (await run(ProbeTarget(HOSTS, SCOPE, client)))["registration"]
    assert check.ok, check.detail
    assert "private_key_jwt" in check.detail

    ec = ECKey.generate_key("P-384")
    ok = await smart_app(jwks={"keys": [ec.as_dict(private=False)]}, redirect_uris=[])
    assert (await run(ProbeTarget(HOSTS, SCOPE, ok)))["registration"].ok


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        # a published private key: the client's secret is out
        (lambda: [RSAKey.generate_key(2048).as_dict(private=True)], "clé privée"),
        # a symmetric key is a secret too, and cannot sign an assertion the server verifies
        (lambda: [OctKey.generate_key(256).as_dict()], "clé privée"),
        # keys reserved for encryption, of an algorithm the token endpoint refuses, or for ES512
        (lambda: [RSAKey.generate_key(2048).as_dict(private=False, use="enc")], "aucune clé publique"),
        (lambda: [RSAKey.generate_key(2048).as_dict(private=False, alg="PS256")], "aucune clé publique"),
        (
            lambda: [RSAKey.generate_key(2048).as_dict(private=False, key_ops=["encrypt"])],
            "aucune clé publique",
        ),
        (lambda: [ECKey.generate_key("P-521").as_dict(private=False)], "aucune clé publique"),
        (lambda: [OKPKey.generate_key("Ed25519").as_dict(private=False)], "aucune clé publique"),
    ],
)
async def test_a_key_client_without_a_usable_public_signing_key_fails(keys: Any, words: str) -> None:
    client = await smart_app(jwks={"keys": keys()}, redirect_uris=[])
    check = (await run(ProbeTarget(HOSTS, SCOPE, client)))["registration"]
    assert not check.ok
    assert words in check.detail


async def test_a_key_client_whose_stored_jwks_no_longer_imports_fails() -> None:
    rsa = RSAKey.generate_key(2048)
    client = await smart_app(jwks={"keys": [rsa.as_dict(private=False)]}, redirect_uris=[])
    for jwks in ({"keys": [{"kty": "RSA", "n": "AQAB"}]}, None):
        check = (await run(ProbeTarget(HOSTS, SCOPE, dataclasses.replace(client, jwks=jwks))))["registration"]
        assert not check.ok
        assert "JWKS" in check.detail


# --------------------------------------------------------------------------- scopes
@pytest.mark.parametrize(
    ("registered", "declared"),
    [
        (SCOPE, SCOPE),
        ("launch patient/Observation.read", "launch patient/Observation.rs"),  # v1 and v2 spellings
        ("openid fhirUser patient/Observation.r", "patient/Observation.rs"),  # identity scopes go unsaid
        ("patient/Observation.rs", "patient/Observation.r patient/Observation.s"),  # two halves
        ("patient/Observation.rs?category=vital-signs", "patient/Observation.rs"),  # narrower than declared
        ("patient/Observation.rs patient/Condition.r", "patient/*.rs"),
    ],
)
async def test_registered_scopes_within_the_declaration_pass(registered: str, declared: str) -> None:
    client = await smart_app(scope=registered)
    check = (await run(ProbeTarget(HOSTS, declared, client)))["scopes"]
    assert check.ok, check.detail


async def test_registered_scopes_beyond_the_declaration_are_named() -> None:
    client = await smart_app(
        scope="launch openid patient/Observation.cruds patient/Condition.rs patient/*.r "
        "patient/Immunization.rs offline_access"
    )
    declared = "openid patient/Observation.rs patient/Immunization.rs?status=completed"
    check = (await run(ProbeTarget(HOSTS, declared, client)))["scopes"]
    assert not check.ok
    assert check.detail == (
        "portées enregistrées au-delà de la déclaration : patient/Observation.cruds (permissions « cud »), "
        "patient/Condition.rs, patient/*.r, patient/Immunization.rs, launch, offline_access"
    )


async def test_unreadable_declared_scopes_fail_the_scope_check() -> None:
    client = await smart_app()
    check = (await run(ProbeTarget(HOSTS, "patient/Observation.xyz", client)))["scopes"]
    assert not check.ok
    assert "déclarées sont illisibles" in check.detail


# --------------------------------------------------------------------------- redirect URIs (no fetch)
async def test_redirect_uris_are_checked_against_the_declared_hosts_and_resolved() -> None:
    # a literal public address needs no DNS: the check passes
    client = await smart_app(redirect_uris=["https://93.184.215.14/callback"])
    check = (await run(ProbeTarget(("93.184.215.14",), SCOPE, client)))["redirect_uris"]
    assert check.ok, check.detail
    # http on the loopback is registrable (for development) but not listable
    client = await smart_app(redirect_uris=["https://93.184.215.14/callback", "http://127.0.0.1:9000/cb"])
    check = (await run(ProbeTarget(("93.184.215.14", "127.0.0.1"), SCOPE, client)))["redirect_uris"]
    assert not check.ok
    assert "« http://127.0.0.1:9000/cb » n’est pas en HTTPS" in check.detail
    # a host that is not declared, and no declared host at all
    client = await smart_app(redirect_uris=["https://elsewhere.example.fr/cb"])
    check = (await run(ProbeTarget(HOSTS, SCOPE, client)))["redirect_uris"]
    assert not check.ok
    assert "hôtes déclarés" in check.detail
    check = (await run(ProbeTarget((), SCOPE, client)))["redirect_uris"]
    assert not check.ok
    assert "aucun hôte" in check.detail
    # a declared name that does not resolve (.invalid never does, RFC 6761)
    client = await smart_app(redirect_uris=["https://app.example.invalid/cb"])
    check = (await run(ProbeTarget(("app.example.invalid",), SCOPE, client)))["redirect_uris"]
    assert not check.ok
    assert "Le nom « app.example.invalid »" in check.detail


async def test_a_backend_service_has_no_redirect_uris_to_check() -> None:
    client, _ = await registry().register(name="Batch", scope="system/Observation.rs", with_secret=True)
    checks = await run(ProbeTarget(HOSTS, "system/Observation.rs", client))
    assert checks["registration"].ok
    assert "à secret" in checks["registration"].detail
    assert checks["redirect_uris"].ok
    assert checks["scopes"].ok
    assert checks["launch_url"].detail == "pas d’adresse de lancement déclarée"


# --------------------------------------------------------------------------- conformance
def weight(kilograms: float) -> dict[str, Any]:
    return {"id": "poids-1", **observation(Entry(MEASURES["poids"], (kilograms,), WHEN), PATIENT, PATIENT)}


def blood_pressure() -> dict[str, Any]:
    return {"id": "ta-1", **observation(Entry(MEASURES["tension"], (125, 80), WHEN), PATIENT, PATIENT)}


async def conformance(*written: dict[str, Any]) -> Check:
    client = await smart_app()
    return (await run(ProbeTarget(HOSTS, SCOPE, client, written)))["conformance"]


async def test_well_formed_vital_signs_conform() -> None:
    check = await conformance(weight(72.5), blood_pressure(), {"resourceType": "Patient", "id": "lea"})
    assert check.ok, check.detail
    assert check.detail == "3 ressources échantillonnées, toutes conformes"


async def test_a_vital_sign_without_loinc_ucum_subject_or_time_fails_with_its_paths() -> None:
    bad = weight(72.5)
    bad["id"] = "bad"
    bad["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "27113001"}]}
    bad["valueQuantity"] = {"value": 160, "unit": "lb"}
    del bad["subject"]
    del bad["effectiveDateTime"]
    check = await conformance(blood_pressure(), bad)
    assert not check.ok
    assert check.detail.startswith(
        "Observation/bad : Observation.code — une mesure vitale doit être codée en LOINC ; "
        "Observation/bad : Observation.subject — une mesure vitale doit désigner son patient ; "
        "Observation/bad : Observation.effective[x] — une mesure vitale doit être datée"
    )
    assert check.detail.endswith("et 1 autre écart")  # the quantity, beyond the first three


async def test_a_component_without_ucum_is_reported_at_its_path() -> None:
    panel = blood_pressure()
    panel["component"][1]["valueQuantity"] = {"value": 80, "unit": "mmHg"}
    check = await conformance(panel)
    assert not check.ok
    assert check.detail == (
        "Observation/ta-1 : Observation.component[1].valueQuantity — l’unité « mmHg » n’est pas codée en UCUM"
    )
    text = blood_pressure()
    del text["component"]
    text["valueString"] = "12/8"
    check = await conformance(text)
    assert not check.ok
    assert "Observation.valueString — la valeur d’une mesure vitale est une quantité UCUM" in check.detail


async def test_a_structurally_invalid_resource_fails_with_the_validation_path() -> None:
    bad = weight(72.5)
    bad["status"] = "done"  # not in the required value set
    bad["colour"] = "blue"  # no such element
    check = await conformance(bad)
    assert not check.ok
    assert "Observation/poids-1 : Observation.status" in check.detail
    assert "Observation/poids-1 : Observation.colour" in check.detail
    # the vital-signs rules hold only for vital signs: a laboratory result is only validated
    glucose = {
        **observation(Entry(MEASURES["glycemie"], (95,), WHEN), PATIENT, PATIENT),
        "valueQuantity": {"value": 95, "unit": "mg/dL"},
    }
    assert (await conformance(glucose)).ok
