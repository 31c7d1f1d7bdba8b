"""The ``hygie`` command: serve, import, demo, migrate."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from hygie.alert_cli import alert_app
from hygie.audit_cli import audit_app
from hygie.config import load_settings
from hygie.ens_cli import ens_app
from hygie.store_cli import store_app

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime

T = TypeVar("T")

app = typer.Typer(help="Hygie: the French national digital-health system on FHIR R4.", no_args_is_help=True)
console = Console()

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (HYGIE_DATA_DIR; default ./data)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="sqlite:///PATH or postgresql://… (HYGIE_DATABASE_URL)")
]


def _export_env(data_dir: Path | None, database_url: str | None) -> None:
    """Make options visible to server workers, which read the environment."""
    if data_dir is not None:
        os.environ["HYGIE_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["HYGIE_DATABASE_URL"] = database_url


def _serve(host: str, port: int, workers: int) -> None:
    import uvicorn  # noqa: PLC0415

    os.environ.setdefault("HYGIE_BASE_URL", f"http://{host}:{port}")
    uvicorn.run(
        "hygie.web.asgi:app",
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (uvicorn)")] = 1,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the server (uvicorn with uvloop and httptools)."""
    _export_env(data_dir, database_url)
    settings = load_settings()
    from hygie.migrate import migrate  # noqa: PLC0415

    migrate(settings.database_url)
    console.print(f"Hygie sur [bold]http://{host}:{port}[/] — API FHIR : http://{host}:{port}/fhir")
    _serve(host, port, workers)


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema (Alembic)."""
    _export_env(data_dir, database_url)
    from hygie.migrate import migrate as run  # noqa: PLC0415

    settings = load_settings()
    run(settings.database_url)
    console.print(f"schema up to date: {settings.database_url}")


def _print_report(report: object) -> None:
    from hygie.importer import ImportReport  # noqa: PLC0415

    assert isinstance(report, ImportReport)
    console.print(f"Stored: {report.stored_total} resources from {report.files} files", soft_wrap=True)
    table = Table()
    table.add_column("resource type")
    table.add_column("stored", justify="right")
    for rtype, n in sorted(report.stored.items()):
        table.add_row(rtype, str(n))
    console.print(table)
    if report.rejected:
        console.print(f"Rejected: {len(report.rejected)}", soft_wrap=True)
        rejected = Table(show_lines=False)
        rejected.add_column("source")
        rejected.add_column("resource")
        rejected.add_column("reason")
        for r in report.rejected:
            rejected.add_row(r.source, r.resource, r.reason)
        console.print(rejected)


async def _import(paths: list[Path]) -> object:
    from hygie.bootstrap import open_runtime  # noqa: PLC0415
    from hygie.importer import import_paths, iter_files  # noqa: PLC0415

    files = list(iter_files(paths))
    total = sum(f.stat().st_size for f in files)
    runtime = await open_runtime(load_settings())
    try:
        with Progress(
            TextColumn("[bold]import"), BarColumn(), DownloadColumn(), TimeRemainingColumn(), console=console
        ) as progress:
            task = progress.add_task("import", total=total)

            def advance(path: Path, _: int) -> None:
                progress.advance(task, path.stat().st_size)

            return await import_paths(runtime.service, paths, progress=advance)
    finally:
        await runtime.close()


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: .json, .ndjson, optionally .gz")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import FHIR Bundles and NDJSON files; print what was stored and what was rejected, and why."""
    _export_env(data_dir, database_url)
    try:
        report = asyncio.run(_import(paths))
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    _print_report(report)
    from hygie.importer import ImportReport  # noqa: PLC0415

    assert isinstance(report, ImportReport)
    if report.rejected:
        raise typer.Exit(1)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    patients: Annotated[int, typer.Option(help="French synthetic citizens to generate")] = 20,
    synthea: Annotated[
        Path | None, typer.Option(help="Folder of Synthea transaction bundles to load as well")
    ] = None,
    data_dir: DataDir = None,
    load_only: Annotated[bool, typer.Option("--load-only", help="Load the demo data, do not serve")] = False,
) -> None:
    """Embedded SQLite under the data folder, demo data loaded once, server on http://127.0.0.1:8000."""
    from hygie.demo.loader import default_communes_csv, load_demo  # noqa: PLC0415

    folder = (data_dir or Path(os.environ.get("HYGIE_DATA_DIR", "data"))).resolve()
    # the demo always runs on the embedded database of its data folder
    _export_env(folder, f"sqlite:///{folder / 'hygie.sqlite3'}")
    communes = default_communes_csv()
    if communes is not None:  # the directory search knows every commune (docs/operations.md)
        os.environ.setdefault("HYGIE_COMMUNES_CSV", str(communes))
    settings = load_settings()
    summary = asyncio.run(load_demo(settings, patients=patients, synthea_dir=synthea, console=console))
    base = f"http://{host}:{port}"
    console.print()
    console.print("[bold]Hygie — démonstration[/]")
    console.print(f"  Accueil      : {base}/")
    console.print(f"  API FHIR R4  : {base}/fhir  (déclaration : {base}/fhir/metadata)")
    console.print(f"  Données      : {settings.data_dir}")
    for line in summary:
        console.print(f"  {line}")
    if not load_only:
        _serve(host, port, 1)


client_app = typer.Typer(help="OAuth/SMART clients (apps and backend services).", no_args_is_help=True)
user_app = typer.Typer(help="Accounts of citizens and professionals.", no_args_is_help=True)
keys_app = typer.Typer(help="The server's signing keys.", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(alert_app, name="alerte")
app.add_typer(ens_app, name="ens")
app.add_typer(store_app, name="store")


async def _with_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    from hygie.bootstrap import open_runtime  # noqa: PLC0415

    runtime = await open_runtime(load_settings())
    try:
        return await action(runtime)
    finally:
        await runtime.close()


@client_app.command("add")
def client_add(
    name: Annotated[str, typer.Option(help="Name shown on the consent screen")],
    scope: Annotated[
        str, typer.Option(help='Scopes the client may obtain, e.g. "launch openid patient/*.rs"')
    ],
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Exact redirect URI (repeatable)")
    ] = None,
    jwks_file: Annotated[
        Path | None, typer.Option(help="Public JWKS (private_key_jwt, backend services)")
    ] = None,
    secret: Annotated[
        bool, typer.Option("--secret", help="Confidential client with a generated secret")
    ] = False,
    launch: Annotated[str | None, typer.Option(help="ehr or standalone")] = None,
    client_id: Annotated[str | None, typer.Option(help="Choose the client_id (default: random)")] = None,
    organization: Annotated[
        str | None,
        typer.Option(
            help="Bind a backend service to a structure (Organization/<id>): it then acts as that "
            "structure, through the structure's care relations only (a practice's software)"
        ),
    ] = None,
    launch_url: Annotated[
        str | None,
        typer.Option(help="Where a portal opens the app (SMART EHR launch: ?iss=…&launch=… appended)"),
    ] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(
            "--audience",
            help="Offer the app in a portal: professional (the BSP's Applications page); repeatable",
        ),
    ] = None,
    description: Annotated[
        str, typer.Option(help="What the app does, in French, as the portal's catalogue shows it")
    ] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a client and print it as JSON (with client_secret when --secret)."""
    _export_env(data_dir, database_url)
    if launch not in (None, "ehr", "standalone"):
        raise typer.BadParameter("--launch must be ehr or standalone")
    jwks = orjson.loads(jwks_file.read_bytes()) if jwks_file else None
    if organization is not None and not organization.startswith("Organization/"):
        organization = f"Organization/{organization}"

    async def run(rt: Runtime) -> dict[str, object]:
        assert rt.auth is not None
        if organization is not None:
            # the structure must be in the directory: a typo would bind the client to nothing
            found = await rt.store.read("Organization", organization.split("/", 1)[1])
            if found is None or found.deleted:
                raise ValueError(f"{organization} is not in the directory of this server")
        client, client_secret = await rt.auth.clients.register(
            name=name,
            scope=scope,
            redirect_uris=redirect_uri or [],
            jwks=jwks,
            with_secret=secret,
            launch=launch,  # type: ignore[arg-type]
            client_id=client_id,
            organization=organization,
            launch_url=launch_url,
            audience=audience or [],
            description=description,
        )
        out: dict[str, object] = {
            "client_id": client.client_id,
            "name": client.name,
            "scope": client.scope,
            "redirect_uris": list(client.redirect_uris),
            "token_endpoint_auth_method": client.auth_method,
        }
        if client.organization:
            out["organization"] = client.organization
        if client.launch_url:
            out["launch_url"] = client.launch_url
        if client.audience:
            out["audience"] = list(client.audience)
        if client_secret:
            out["client_secret"] = client_secret
        return out

    try:
        result = asyncio.run(_with_runtime(run))
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


@client_app.command("token")
def client_token(
    client_id: Annotated[str, typer.Option(help="A registered client with system/ scopes")],
    scope: Annotated[str | None, typer.Option(help="Narrower scopes (default: the client's)")] = None,
    minutes: Annotated[int, typer.Option(help="Lifetime in minutes (at most 1440)")] = 60,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a backend-service access token (JSON) for scripts, curl and load tests."""
    _export_env(data_dir, database_url)
    if not 1 <= minutes <= 1440:
        raise typer.BadParameter("--minutes must be between 1 and 1440")
    from hygie.auth.errors import OAuthError  # noqa: PLC0415

    async def run(rt: Runtime) -> dict[str, object]:
        assert rt.auth is not None
        return await rt.auth.service_token(client_id, scope, minutes * 60)

    try:
        result = asyncio.run(_with_runtime(run))
    except OAuthError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


@user_app.command("add")
def user_add(
    kind: Annotated[str, typer.Option(help="citizen or professional")],
    login: Annotated[str, typer.Option(help="Login (e-mail or identifier)")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
    totp: Annotated[
        bool, typer.Option("--totp", help="Require a TOTP second factor; prints the provisioning URI")
    ] = False,
    patient: Annotated[str | None, typer.Option(help="Patient id of a citizen")] = None,
    practitioner: Annotated[str | None, typer.Option(help="Practitioner id of a professional")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account (the password is read from standard input)."""
    _export_env(data_dir, database_url)
    if kind not in ("citizen", "professional"):
        raise typer.BadParameter("--kind must be citizen or professional")
    if not password_stdin:
        raise typer.BadParameter("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    from hygie.auth.accounts import AccountError  # noqa: PLC0415

    async def run(rt: Runtime) -> dict[str, object]:
        assert rt.accounts is not None
        account, uri = await rt.accounts.create(
            kind,
            login,
            password,
            totp=totp,
            patient_id=patient,
            practitioner_id=practitioner,
        )
        out: dict[str, object] = {"id": account.id, "kind": account.kind, "login": account.login}
        if uri:
            out["totp_uri"] = uri
        return out

    try:
        result = asyncio.run(_with_runtime(run))
    except AccountError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create a new signing key; tokens signed by the previous ones stay valid until they expire."""
    _export_env(data_dir, database_url)

    async def run(rt: Runtime) -> str:
        assert rt.auth is not None
        return await rt.auth.keys.rotate()

    typer.echo(asyncio.run(_with_runtime(run)))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
