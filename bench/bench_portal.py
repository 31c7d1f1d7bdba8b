"""How fast the portals serve their pages — the citizen's space (ENS) and the professionals'
services (BSP) — beside what the same data costs through the FHIR API and at the raw database.

For each portal and database (SQLite; PostgreSQL when available): the demo population is loaded
(``hygie demo``'s loader: 20 French synthetic citizens, plus the shared Synthea patients when
present), a real ``hygie serve`` runs, a demo person signs in over HTTP (the sign-in form and, for
the professional, the second factor, as a browser does) and ``wrk`` requests each portal page
with that session cookie. Beside each page:

* the main FHIR search (or operation) the page makes, requested through the API with a backend token (the
  FHIR layer alone, no HTML);
* the raw database ceiling of that search: the same SQL the search compiler produces, run in a
  tight loop with no FHIR logic (``_ceiling.py``).

Writes ``bench/out/portal-*.json`` and the portal's section of ``docs/benchmarks.md``::

    .venv/bin/python bench/bench_portal.py [--portal ens|bsp] [--pg-url postgresql://…] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _ceiling as ceiling
import _infra as infra
import httpx
import pyotp
from _load import run_wrk
from rich.console import Console

from hygie.bootstrap import open_runtime
from hygie.config import load_settings
from hygie.demo.loader import load_demo
from hygie.domain.ens.vitals import MEASURES, search_codes
from hygie.domain.geo import load_gazetteer

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
DOC = REPO / "docs" / "benchmarks.md"
PASSWORD = "Hygie-demo-2026"

_LYON = load_gazetteer().find("Lyon")[0]

# page -> (label, the main FHIR search it makes: resource type (or Type/$operation) and parameters, {p} = patient id)
PAGES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "/ens": ("accueil", "DocumentReference", [("patient", "{p}"), ("_sort", "-date"), ("_count", "3")]),
    "/ens/documents": (
        "documents",
        "DocumentReference",
        [("patient", "{p}"), ("_sort", "-date"), ("_count", "20")],
    ),
    "/ens/carnet": ("carnet de santé", "AllergyIntolerance", [("patient", "{p}")]),
    # one $lastn gives every tile its latest value (web/ens/vitals.py)
    "/ens/mesures": (
        "mesures",
        "Observation/$lastn",
        [("patient", "{p}"), ("code", search_codes(MEASURES.values())), ("max", "5")],
    ),
    "/ens/ordonnances": ("ordonnances", "MedicationRequest", [("patient", "{p}"), ("_count", "50")]),
    "/ens/agenda": ("agenda", "Appointment", [("patient", "{p}")]),
    "/ens/messages": ("messagerie", "Communication", [("subject", "Patient/{p}")]),
    "/ens/controles": ("qui voit mon dossier", "Consent", [("patient", "{p}")]),
    # the directory around Lyon (the server's gazetteer: the package's extract, as here); the
    # page also searches the structures (Organization?_has:Location:organization:near=…)
    "/ens/annuaire?ou=Lyon&rayon=20": (
        "annuaire",
        "PractitionerRole",
        [
            ("location.near", f"{_LYON.lat:.6f}|{_LYON.lng:.6f}|20|km"),
            ("_include", "PractitionerRole:practitioner"),
            ("_include", "PractitionerRole:organization"),
            ("_include", "PractitionerRole:location"),
        ],
    ),
}


# the professional's pages: Claire DUPONT's GP, on her record ({p})
BSP_PAGES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "/bsp": ("accueil", "Task", [("owner", "Practitioner/{g}"), ("status", "requested")]),
    "/bsp/patients": ("mes patients", "Patient", [("_count", "50")]),
    "/bsp/patients/{p}": (
        "synthèse du dossier",
        "DocumentReference",
        [("patient", "{p}"), ("status", "current"), ("_sort", "-date"), ("_count", "5")],
    ),
    "/bsp/patients/{p}/documents": (
        "documents du dossier",
        "DocumentReference",
        [("patient", "{p}"), ("status", "current"), ("_sort", "-date"), ("_count", "100")],
    ),
    "/bsp/ordonnances": (
        "ordonnances",
        "MedicationRequest",
        [("requester", "Practitioner/{g}"), ("_count", "50")],
    ),
    "/bsp/annuaire?qui=infirmier&ou=Lyon&rayon=20": (
        "annuaire",
        "PractitionerRole",
        [
            ("location.near", f"{_LYON.lat:.6f}|{_LYON.lng:.6f}|20|km"),
            ("_include", "PractitionerRole:practitioner"),
            ("_include", "PractitionerRole:organization"),
            ("_include", "PractitionerRole:location"),
        ],
    ),
}


@dataclass(frozen=True)
class PortalSpec:
    key: str
    title: str
    login: str
    who: str  # how the report names the person signed in
    home: str
    pages: dict[str, tuple[str, str, list[tuple[str, str]]]]
    totp: bool = False

    @property
    def start(self) -> str:
        marker = "portal" if self.key == "ens" else f"portal-{self.key}"
        return f"<!-- bench:{marker}:start (generated by bench/bench_portal.py: do not edit by hand) -->"

    @property
    def end(self) -> str:
        return f"<!-- bench:{'portal' if self.key == 'ens' else f'portal-{self.key}'}:end -->"


PORTALS = {
    "ens": PortalSpec(
        "ens",
        "Citizen portal (ENS) pages",
        "claire.dupont@demo.hygie.fr",
        "the demo citizen Claire DUPONT",
        "/ens",
        PAGES,
    ),
    "bsp": PortalSpec(
        "bsp",
        "Professionals' portal (BSP) pages",
        "medecin@demo.hygie.fr",
        "Claire DUPONT's GP (password and TOTP)",
        "/bsp",
        BSP_PAGES,
        totp=True,
    ),
}


def totp_secret(database_url: str, data_dir: Path, login: str) -> str:
    """The demo account's TOTP secret, read from the accounts store (as its authenticator app has it)."""

    async def read() -> str:
        runtime = await open_runtime(load_settings(data_dir=data_dir, database_url=database_url))
        try:
            assert runtime.accounts is not None
            account = await runtime.accounts.by_login(login)
            assert account is not None and account.totp_secret, f"{login} has no second factor"
            return str(account.totp_secret)
        finally:
            await runtime.close()

    return asyncio.run(read())


def sign_in(base: str, spec: PortalSpec, secret: str | None = None) -> str:
    """The session cookie of the demo person, signed in through the sign-in form (and the second
    factor when the account has one)."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        page = client.get("/connexion")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, "no CSRF field on the sign-in page"
        answer = client.post(
            "/connexion", data={"csrf": csrf.group(1), "identifiant": spec.login, "mot_de_passe": PASSWORD}
        )
        if secret is not None:
            factor = client.get(answer.headers["location"]) if answer.status_code == 303 else answer
            token = re.search(r'name="csrf" value="([^"]+)"', factor.text)
            assert token, "no CSRF field on the second-factor page"
            answer = client.post(
                "/connexion/code", data={"csrf": token.group(1), "code": pyotp.TOTP(secret).now()}
            )
        assert answer.status_code == 303, f"sign-in failed: {answer.status_code}"
        cookie = f"hygie_session={client.cookies['hygie_session']}"
        home = client.get(spec.home)
        assert home.status_code == 200, f"{spec.home} answered {home.status_code}"
    return cookie


def gp_of(server: infra.Server, patient: str) -> str:
    with httpx.Client(timeout=30, headers=server.headers) as client:
        found = client.get(f"{server.fhir}/Patient/{patient}").json()
    return str(found["generalPractitioner"][0]["reference"]).split("/", 1)[1]


def patient_of(server: infra.Server) -> str:
    with httpx.Client(timeout=30, headers=server.headers) as client:
        bundle = client.get(f"{server.fhir}/Patient", params={"identifier": "285044523412351"}).json()
    return str(bundle["entry"][0]["resource"]["id"])


def fhir_path(resource_type: str, params: list[tuple[str, str]], patient: str, gp: str = "") -> str:
    query = "&".join(f"{k}={v.format(p=patient, g=gp)}" for k, v in params)
    return f"/fhir/{resource_type}?{query}"


def load(database_url: str, data_dir: Path) -> None:
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    asyncio.run(load_demo(settings, patients=20, synthea_dir=None, console=Console(stderr=True)))


def run_database(
    spec: PortalSpec, kind: str, database_url: str, data_dir: Path, seconds: float, connections: int
) -> dict[str, Any]:
    infra.migrate(database_url, data_dir)
    load(database_url, data_dir)
    if kind == "PostgreSQL":
        # the statistics autovacuum would gather a minute after the load: without them the
        # first pages measured ran with plans for empty tables (the home page at 15/s instead
        # of 46, while autovacuum analysed underneath)
        infra.admin(database_url, "ANALYZE")
    secret = totp_secret(database_url, data_dir, spec.login) if spec.totp else None
    rows: list[dict[str, Any]] = []
    with infra.hygie_server(database_url, data_dir, 1, OUT / "logs") as server:
        cookie = sign_in(server.url, spec, secret)
        patient = patient_of(server)
        gp = gp_of(server, patient)
        for template, (label, rtype, params) in spec.pages.items():
            path = template.format(p=patient, g=gp)
            probe = httpx.get(server.url + path, headers={"Cookie": cookie}, timeout=30)
            if probe.status_code != 200:
                infra.log(f"{path}: HTTP {probe.status_code}, skipped")
                continue
            name = f"portal-{spec.key}-{kind}-{label.replace(' ', '-')}"
            page = run_wrk(
                server.url,
                OUT / "wrk",
                name,
                connections=connections,
                seconds=seconds,
                path=path,
                cookie=cookie,
            )
            api = run_wrk(
                server.url,
                OUT / "wrk",
                name + "-api",
                connections=connections,
                seconds=seconds,
                path=fhir_path(rtype, params, patient, gp),
                token=server.token,
            )
            dialect = "postgresql" if kind == "PostgreSQL" else "sqlite"
            filled = [[(k, v.format(p=patient, g=gp)) for k, v in params]]
            searches = (
                ceiling.prepare_lastn(dialect, filled)
                if rtype == "Observation/$lastn"
                else ceiling.prepare_searches(dialect, filled, rtype)
            )
            if kind == "PostgreSQL":
                raw = ceiling.pg_searches(
                    database_url,
                    searches,
                    pool_size=10,
                    concurrency=connections,
                    seconds=seconds,
                    max_ops=10_000_000,
                )
            else:
                payload = [(s.text, s.args, s.count) for s in searches]
                raw = ceiling.sqlite_reads(
                    database_url.removeprefix("sqlite:///"),
                    "search",
                    payload,
                    processes=1,
                    seconds=seconds,
                    max_ops=10_000_000,
                )
            rows.append(
                {
                    "page": template.replace("{p}", "{patient}"),
                    "label": label,
                    "page_bytes": len(probe.content),
                    "search": fhir_path(rtype, params, "…", "…"),
                    "page_measure": page.to_json(),
                    "api_measure": api.to_json(),
                    "ceiling_measure": raw.to_json(),
                }
            )
            infra.log(
                f"{kind} {path}: {page.rate:,.0f}/s p99 {page.p99_ms:.1f} ms | API {api.rate:,.0f}/s | DB {raw.rate:,.0f}/s"
            )
    return {"database": kind, "rows": rows}


def _fmt(m: dict[str, Any]) -> tuple[str, str, str]:
    return f"{m['rate']:,.0f}", f"{m['p50_ms']:.1f}", f"{m['p99_ms']:.1f}"


def cell(text: str) -> str:
    """A table cell's text: a ``|`` (FHIR's near=lat|lng|…) would end the cell."""
    return text.replace("|", "\\|")


def report(results: dict[str, Any], spec: PortalSpec) -> str:
    lines = [
        spec.start,
        "",
        f"## {spec.title} ({results['date']}, commit {results['commit']})",
        "",
        f"- Machine: {results['machine']}.",
        f"- Data: `hygie demo`'s population (20 French synthetic citizens{results['synthea']}); {spec.who} "
        f"signed in through the sign-in form; `wrk` with the session cookie, "
        f"{results['connections']} connections, {results['seconds']:.0f} s per loop, one server worker.",
        "- Each page passes the access policy and writes its audit events for every FHIR interaction it makes"
        " (ADR 0008). *API*: the page's main FHIR search (or operation) through the API with a backend token. *DB ceiling*:"
        " that search's SQL alone, in a tight loop.",
        "",
    ]
    for db in results["databases"]:
        lines += [
            f"### {db['database']}",
            "",
            "| page | HTML bytes | page /s | p50 ms | p99 ms | its main search | API /s | API p99 ms | DB ceiling /s | errors |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for r in db["rows"]:
            rate, p50, p99 = _fmt(r["page_measure"])
            arate, _, ap99 = _fmt(r["api_measure"])
            crate, _, _ = _fmt(r["ceiling_measure"])
            lines.append(
                f"| `{r['page']}` ({r['label']}) | {r['page_bytes']:,} | **{rate}** | {p50} | {p99} | `{cell(r['search'])}` "
                f"| {arate} | {ap99} | {crate} | {r['page_measure']['errors']} |"
            )
        lines.append("")
    lines.append(spec.end)
    return "\n".join(lines)


def write_doc(section: str, spec: PortalSpec) -> None:
    text = DOC.read_text()
    if spec.start in text:
        before, rest = text.split(spec.start, 1)
        after = rest.split(spec.end, 1)[1]
        text = before + section + after
    else:
        marker = "<!-- bench:auth:start"
        text = (
            text.replace(marker, section + "\n\n" + marker, 1)
            if marker in text
            else text + "\n" + section + "\n"
        )
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portal", choices=sorted(PORTALS), default="ens")
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL cluster (default: a throwaway one)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--only",
        action="append",
        metavar="LABEL",
        help="measure only the page with this label (repeatable); the JSON is written, docs/benchmarks.md is not",
    )
    parser.add_argument(
        "--pin",
        metavar="REF",
        help="serve the src/ of this commit (a pinned copy): others' work in progress in the tree stays out",
    )
    args = parser.parse_args(argv)
    if args.pin and not os.environ.get("HYGIE_BENCH_PINNED"):
        src = infra.pin_sources(args.pin, OUT.resolve())
        env = {**os.environ, "HYGIE_BENCH_PINNED": src.parent.name, "PYTHONPATH": str(src)}
        infra.log(f"pinned the server's code to {args.pin}: {src}")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    spec = PORTALS[args.portal]
    if args.only:
        unknown = set(args.only) - {label for label, _, _ in spec.pages.values()}
        if unknown:
            parser.error(f"no page labelled {', '.join(sorted(unknown))}")
        spec = dataclasses.replace(
            spec, pages={k: v for k, v in spec.pages.items() if v[0] in set(args.only)}
        )
    infra.ensure_wrk()
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    work = OUT / f"portal-{spec.key}-{stamp}"
    facts = infra.machine_facts()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": infra.code_commit(),
        "machine": f"{facts['cpu']}, {facts['cores']} cores, {facts['ram']} RAM, Python {facts['python']}, "
        f"Linux {facts['kernel']}, {facts['wrk']}; server, database and wrk share the cores",
        "seconds": args.seconds,
        "connections": args.connections,
        "synthea": ""
        if not (REPO.parent / "shared" / "data" / "synthea-r4" / "bundles").is_dir()
        else ", plus the shared Synthea patients",
        "databases": [],
    }
    sqlite_dir = work / "sqlite"
    results["databases"].append(
        run_database(
            spec,
            "SQLite",
            f"sqlite:///{sqlite_dir / 'hygie.sqlite3'}",
            sqlite_dir,
            args.seconds,
            args.connections,
        )
    )
    if not args.no_pg:
        with infra.postgres_cluster(args.pg_url) as admin_url:
            url, _ = infra.fresh_pg_database(admin_url, "bench_portal")
            results["databases"].append(
                run_database(spec, "PostgreSQL", url, work / "pg", args.seconds, args.connections)
            )
            infra.drop_pg_database(admin_url, "bench_portal")
    (OUT / f"portal-{spec.key}-{stamp}.json").write_text(json.dumps(results, indent=2))
    if args.only:
        infra.log(
            f"wrote bench/out/portal-{spec.key}-{stamp}.json (a partial run: docs/benchmarks.md untouched)"
        )
    else:
        write_doc(report(results, spec), spec)
        infra.log(f"wrote docs/benchmarks.md and bench/out/portal-{spec.key}-{stamp}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
