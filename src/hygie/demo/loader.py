"""Load the demo data once into a data folder: French synthetic citizens, then Synthea patients."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hygie.bootstrap import open_runtime
from hygie.config import Settings
from hygie.demo.accounts import create_demo_accounts
from hygie.demo.ens import seed_spaces
from hygie.domain.access import Caller
from hygie.domain.identity.insi import RegisterInsiService
from hygie.fhir.outcome import FhirError
from hygie.fhir.request import FhirRequest
from hygie.fhir.router import route

__all__ = ["default_communes_csv", "default_synthea_dir", "load_demo"]

_MARKER = "demo-loaded"


def default_synthea_dir() -> Path | None:
    """The shared Synthea bundles, when this checkout sits beside ``shared/`` (HYGIE_SYNTHEA_DIR wins)."""
    configured = os.environ.get("HYGIE_SYNTHEA_DIR")
    if configured:
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in [start, *start.parents]:
            candidate = folder.parent / "shared" / "data" / "synthea-r4" / "bundles"
            if candidate.is_dir():
                return candidate
    return None


def default_communes_csv() -> Path | None:
    """The full INSEE commune list with coordinates, when this checkout sits beside ``shared/``:
    the demo's directory search then knows every commune, not only the package's extract."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in [start, *start.parents]:
            candidate = folder.parent / "shared" / "data" / "fr" / "communes" / "communes-geo-2024.csv"
            if candidate.is_file():
                return candidate
    return None


DEMO_API_CLIENT = "hygie-demo-api"


async def load_demo(
    settings: Settings, *, patients: int, synthea_dir: Path | None, console: Console, seed: int = 2026
) -> list[str]:
    """Load the demo population unless the data folder already has it; return summary lines."""
    from hygie.demo.generator import DEMO_CITIZENS, generate_population  # noqa: PLC0415

    marker = settings.data_dir / _MARKER
    lines: list[str] = []
    runtime = await open_runtime(settings)
    caller = Caller.operator("hygie demo")
    try:
        if marker.exists():
            lines.append(f"Données de démonstration déjà chargées ({marker.read_text().strip()}).")
        else:
            # synthetic people carry the demonstration INS OID, never the production one
            bundles = generate_population(patients, seed=seed, ins="demo", large_patient=True)
            synthea = synthea_dir or default_synthea_dir()
            synthea_files = sorted(synthea.glob("*.json.gz")) if synthea and synthea.is_dir() else []
            stored = 0
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
            ) as progress:
                task = progress.add_task("chargement", total=len(bundles) + len(synthea_files))
                for bundle in bundles:
                    stored += await _post(runtime.service, caller, bundle)
                    progress.advance(task)
                for path in synthea_files:
                    stored += await _post(
                        runtime.service, caller, orjson.loads(gzip.decompress(path.read_bytes()))
                    )
                    progress.advance(task)
            # the INSi-like reference register (the national identity register's stand-in)
            RegisterInsiService.from_population(bundles).save(settings.insi_register_path)
            marker.write_text(
                f"{stored} ressources, {patients} citoyens, {len(synthea_files)} patients Synthea\n"
            )
            lines.append(
                f"Chargé : {stored} ressources ({patients} citoyens, {len(synthea_files)} patients Synthea)."
            )
        # the citizens' spaces: what they and their carers built up in the portal (idempotent)
        spaces = await seed_spaces(runtime)
        lines.append(f"Espaces santé de démonstration prêts : {spaces}.")
        lines.append("Citoyens de démonstration :")
        lines.extend(f"  - {c}" for c in DEMO_CITIZENS)
        assert runtime.accounts is not None
        logins = await create_demo_accounts(runtime.service, runtime.accounts)
        # the app store: publishers, apps at every stage, the authorities (idempotent)
        from hygie.demo.store import seed_store  # noqa: PLC0415

        logins += await seed_store(runtime.app_store, runtime.accounts)
        lines.append("Comptes de démonstration (identifiant / mot de passe) :")
        lines.extend(f"  - {login.line()}" for login in logins)
        # a read-only backend service, for curl and scripts (hygie client token)
        assert runtime.auth is not None
        if await runtime.auth.clients.get(DEMO_API_CLIENT) is None:
            await runtime.auth.clients.register(
                name="Scripts de démonstration",
                scope="system/*.rs",
                with_secret=True,
                client_id=DEMO_API_CLIENT,
            )
        lines.append(
            f"Jeton d'API (lecture, 1 h) : .venv/bin/hygie client token --client-id {DEMO_API_CLIENT} "
            f"--data-dir {settings.data_dir}"
        )
    finally:
        await runtime.close()
    return lines


async def _post(service: object, caller: Caller, bundle: dict[str, object]) -> int:
    from hygie.fhir.interactions import FhirService  # noqa: PLC0415

    assert isinstance(service, FhirService)
    request = FhirRequest("POST", "", [], {"prefer": "return=minimal"}, resource=bundle, caller=caller)
    try:
        response = await route(service, request)
    except FhirError as error:
        raise RuntimeError(f"demo bundle rejected: {error}") from error
    body = response.body if isinstance(response.body, dict) else {}
    return len(body.get("entry") or [])
