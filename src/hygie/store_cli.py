"""``hygie store``: the Store santé from the operator's console (``store/service.py``).

* ``editeur-ajouter`` — a publisher (raison sociale, SIRET, contact address), its account (the
  password on standard input, ``--totp`` for a second factor: the provisioning URI is printed) and
  the account's membership of that publisher: it signs in at ``/editeur``.
* ``autorite-ajouter`` — an agent of an authority (``--agence ans``: the digital-health authority,
  reviews and surveillance; ``--agence ansm``: the medicines agency, the control queue): they sign
  in at ``/autorite``.
* ``sonder`` — runs the technical checks of every listed app (``StoreService.probe_all``) and
  prints each app's results; an app listed with data exchange whose checks fail is downgraded
  (its SMART client suspended) and regains the exchange once they pass. The command operators put
  in a cron job (hourly, say); it exits 1 when a check failed, so that the job's monitoring sees it.
* ``grille-publier FICHIER.json`` — publishes a revised criteria grid as the next version (dated
  today); every problem of a refused grid is printed, nothing is published.
* ``tableau`` — the dashboard: apps by state and category, the report queues and their delays.

Examples::

    echo "$MOT_DE_PASSE" | hygie store editeur-ajouter --nom "Santé Connectée SAS" \\
        --siret 81234567800013 --courriel contact@sante-connectee.fr \\
        --login editeur@sante-connectee.fr --password-stdin --totp
    echo "$MOT_DE_PASSE" | hygie store autorite-ajouter --agence ansm \\
        --login agent@ansm.example.fr --password-stdin --totp
    hygie store sonder
    hygie store grille-publier grille-v2.json
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hygie.config import load_settings
from hygie.domain.store.catalogue import CATEGORIES, STATES
from hygie.domain.store.triage import QUEUES
from hygie.store.service import AGENCIES, QUEUE_OF_AGENCY, Member, StoreError

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

__all__ = ["store_app"]

T = TypeVar("T")

store_app = typer.Typer(
    help="Le catalogue santé : éditeurs, autorités, contrôles techniques, grille des critères.",
    no_args_is_help=True,
)
console = Console()

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (HYGIE_DATA_DIR; default ./data)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="sqlite:///PATH or postgresql://… (HYGIE_DATABASE_URL)")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]
Totp = Annotated[
    bool, typer.Option("--totp", help="Require a TOTP second factor; prints the provisioning URI")
]
# who publishes a grid from the console: an authority without an account (the operator)
CONSOLE_ACCOUNT = "hygie-console"


def _export_env(data_dir: Path | None, database_url: str | None) -> None:
    if data_dir is not None:
        os.environ["HYGIE_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["HYGIE_DATABASE_URL"] = database_url


async def _with_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    from hygie.bootstrap import open_runtime  # noqa: PLC0415

    runtime = await open_runtime(load_settings())
    try:
        return await action(runtime)
    finally:
        await runtime.close()


def _password(password_stdin: bool) -> str:
    if not password_stdin:
        raise typer.BadParameter("pass the password on standard input with --password-stdin")
    return sys.stdin.readline().rstrip("\n")


def _fail(messages: list[str], code: int = 2) -> typer.Exit:
    for message in messages:
        console.print(f"[red]{message}[/]", soft_wrap=True)
    return typer.Exit(code)


def _echo_json(value: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


async def _account_problems(runtime: Runtime, login: str, password: str) -> list[str]:
    """Why the account could not be created — checked before anything is written, so that a
    refused account leaves no publisher behind."""
    from hygie.auth.accounts import AccountError, normalise_login  # noqa: PLC0415
    from hygie.auth.passwords import check_password_policy  # noqa: PLC0415

    assert runtime.accounts is not None
    try:
        normalised = normalise_login(login)
    except AccountError as error:
        return [str(error)]
    if await runtime.accounts.by_login(normalised) is not None:
        return ["Un compte existe déjà avec cet identifiant."]
    return check_password_policy(password, normalised)


async def _new_account(runtime: Runtime, kind: str, login: str, password: str, totp: bool) -> dict[str, Any]:
    assert runtime.accounts is not None
    account, uri = await runtime.accounts.create(kind, login, password, totp=totp)
    out: dict[str, Any] = {"account": account.id, "login": account.login}
    if uri:
        out["totp_uri"] = uri
    return out


@store_app.command("editeur-ajouter")
def add_publisher(
    nom: Annotated[str, typer.Option("--nom", help="Raison sociale de l’éditeur")],
    siret: Annotated[str, typer.Option("--siret", help="SIRET (14 chiffres)")],
    courriel: Annotated[str, typer.Option("--courriel", help="Adresse de contact de l’éditeur")],
    login: Annotated[str, typer.Option("--login", help="Identifiant du compte de l’éditeur")],
    password_stdin: PasswordStdin = False,
    totp: Totp = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a publisher, its account and the account's membership; print them as JSON."""
    _export_env(data_dir, database_url)
    password = _password(password_stdin)

    async def run(rt: Runtime) -> dict[str, Any]:
        problems = await _account_problems(rt, login, password)
        if problems:
            raise StoreError([("compte", p) for p in problems])
        publisher = await rt.app_store.create_publisher(nom, siret, courriel)
        account = await _new_account(rt, "publisher", login, password, totp)
        await rt.app_store.add_member(account["account"], "publisher", publisher_id=publisher.id)
        return {"publisher": publisher.id, "name": publisher.name, "siret": publisher.siret, **account}

    try:
        _echo_json(asyncio.run(_with_runtime(run)))
    except StoreError as error:
        raise _fail([message for _, message in error.problems]) from error


@store_app.command("autorite-ajouter")
def add_authority(
    agence: Annotated[str, typer.Option("--agence", help="ans (numérique en santé) ou ansm (médicament)")],
    login: Annotated[str, typer.Option("--login", help="Identifiant du compte de l’agent")],
    password_stdin: PasswordStdin = False,
    totp: Totp = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an authority's agent (account and membership); print them as JSON."""
    _export_env(data_dir, database_url)
    if agence not in AGENCIES:
        raise typer.BadParameter(f"--agence must be one of {', '.join(AGENCIES)}")
    password = _password(password_stdin)

    async def run(rt: Runtime) -> dict[str, Any]:
        problems = await _account_problems(rt, login, password)
        if problems:
            raise StoreError([("compte", p) for p in problems])
        account = await _new_account(rt, "authority", login, password, totp)
        await rt.app_store.add_member(account["account"], "authority", agency=agence)
        return {"agency": agence, "agency_name": AGENCIES[agence], **account}

    try:
        _echo_json(asyncio.run(_with_runtime(run)))
    except StoreError as error:
        raise _fail([message for _, message in error.problems]) from error


@store_app.command("sonder")
def probe(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Run the technical checks of every listed app and print them (exit 1 if one failed)."""
    _export_env(data_dir, database_url)

    async def run(rt: Runtime) -> tuple[dict[str, str], list[Any]]:
        before = {a.id: a.state for a in await rt.app_store.apps()}
        return before, await rt.app_store.probe_all()

    try:
        before, probed = asyncio.run(_with_runtime(run))
    except StoreError as error:
        raise _fail([str(error)]) from error
    if not probed:
        console.print("Aucune application référencée : rien à contrôler.")
        return
    failed = 0
    for app in probed:
        state = STATES.get(app.state, app.state)
        changed = before.get(app.id) != app.state
        line = f"[bold]{app.name}[/] ({app.id}) — {state}"
        if changed:
            line += f" [yellow](était : {STATES.get(before.get(app.id, ''), before.get(app.id))})[/]"
        console.print(line, soft_wrap=True)
        for check in app.checks:
            ok = bool(check.get("ok"))
            failed += not ok
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            console.print(f"  {mark} {check.get('label')} : {check.get('detail')}", soft_wrap=True)
    count = len(probed)
    console.print(
        f"{count} application{'s' if count > 1 else ''} contrôlée{'s' if count > 1 else ''}, "
        f"{failed} contrôle{'s' if failed > 1 else ''} en échec.",
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(1)


@store_app.command("grille-publier")
def publish_grid(
    fichier: Annotated[Path, typer.Argument(help="La grille révisée, en JSON (même forme que grid.json)")],
    agence: Annotated[str, typer.Option("--agence", help="L’autorité qui publie : ans ou ansm")] = "ans",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Publish a revised criteria grid as the next version (every problem printed when refused)."""
    _export_env(data_dir, database_url)
    if agence not in AGENCIES:
        raise typer.BadParameter(f"--agence must be one of {', '.join(AGENCIES)}")
    try:
        data = orjson.loads(fichier.read_bytes())
    except FileNotFoundError as error:
        raise _fail([f"{fichier} : fichier introuvable."]) from error
    except orjson.JSONDecodeError as error:
        raise _fail([f"{fichier} : JSON illisible (ligne {error.lineno}, colonne {error.colno})."]) from error
    if not isinstance(data, dict):
        raise _fail([f"{fichier} : la grille est un objet JSON avec ses familles et ses critères."])
    data["published"] = date.today().isoformat()
    member = Member(CONSOLE_ACCOUNT, "authority", agency=agence)

    async def run(rt: Runtime) -> Any:
        return await rt.app_store.publish_grid(data, member)

    try:
        grid = asyncio.run(_with_runtime(run))
    except StoreError as error:
        raise _fail([f"{fichier} : {message}" for _, message in error.problems]) from error
    console.print(
        f"Version {grid.version} de la grille publiée ({len(grid.criteria)} critères) : "
        "elle s’applique aux dépôts à venir.",
        soft_wrap=True,
    )


@store_app.command("tableau")
def dashboard(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Print the dashboard: apps by state and category, report queues and their delays."""
    _export_env(data_dir, database_url)

    async def run(rt: Runtime) -> dict[str, Any]:
        return await rt.app_store.dashboard()

    board = asyncio.run(_with_runtime(run))
    by_state: dict[str, dict[str, int]] = board["by_state"]
    apps = Table(title=f"Applications par état et par catégorie ({board['total']})")
    apps.add_column("état")
    for code in CATEGORIES:
        apps.add_column(f"cat. {code}", justify="right")
    apps.add_column("total", justify="right")
    for state, label in STATES.items():
        counts = [by_state.get(state, {}).get(code, 0) for code in CATEGORIES]
        apps.add_row(label, *(str(n) for n in counts), str(sum(counts)))
    console.print(apps)
    queues = Table(title="Signalements par file")
    for name, justify in (
        ("file", "left"),
        ("ouverts", "right"),
        ("en retard", "right"),
        ("clos", "right"),
        ("délai moyen (j)", "right"),
        ("clos hors délai", "right"),
    ):
        queues.add_column(name, justify=justify, no_wrap=name == "file")  # type: ignore[arg-type]
    agency_of = {queue: agency for agency, queue in QUEUE_OF_AGENCY.items()}
    for code, label in QUEUES.items():
        q = board["queues"][code]
        short = f"{label.split(' — ')[0]} ({agency_of.get(code, '?')})"  # "Contrôle (ansm)"
        mean = "—" if q["mean_days"] is None else f"{q['mean_days']:.1f}".replace(".", ",")
        queues.add_row(
            short, str(q["open"]), str(q["overdue"]), str(q["closed"]), mean, str(q["late_closed"])
        )
    console.print(queues)
