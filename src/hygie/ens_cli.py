"""``hygie ens purger``: erase the health spaces whose archive period has ended.

A closed space's record is archived for ``HYGIE_ENS_ARCHIVE_YEARS`` (10 by default), then
destroyed (``domain/ens/purge.py``): this command does it for every space whose period ended
before now, and prints what it erased — ``--dry-run`` prints what it would erase and erases
nothing. Run it once a day (a timer, a cron job), or let the server's background worker call
``domain.ens.purge.run_daily``. The audit trail is kept; each purge adds an AuditEvent to the
person's chain.

Example::

    hygie ens purger --dry-run
    hygie ens purger
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from hygie.config import load_settings
from hygie.domain.ens.controls import french_date
from hygie.domain.ens.lifecycle import SpaceRules
from hygie.domain.ens.purge import PurgeReport, purge_expired

__all__ = ["ens_app"]

ens_app = typer.Typer(
    help="Espaces numériques de santé : fin de la période d’archivage.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (HYGIE_DATA_DIR; default ./data)")
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="sqlite:///PATH or postgresql://… (HYGIE_DATABASE_URL)")
]


async def _purge(data_dir: Path | None, database_url: str | None, dry_run: bool) -> PurgeReport:
    from hygie.bootstrap import clock_us, open_runtime  # noqa: PLC0415

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    runtime = await open_runtime(settings)
    try:
        rules = SpaceRules(opt_out_days=settings.ens_opt_out_days, archive_years=settings.ens_archive_years)
        return await purge_expired(
            runtime.store,
            runtime.audit,
            now_us=clock_us(),
            rules=rules,
            dry_run=dry_run,
            server=runtime.service.server,
        )
    finally:
        await runtime.close()


@ens_app.command("purger")
def purger(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Dire ce qui serait effacé, sans rien effacer")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Efface le dossier des espaces fermés dont la période d’archivage est terminée."""
    report = asyncio.run(_purge(data_dir, database_url, dry_run))
    verb = "serait effacé" if dry_run else "effacé"
    for space in report.spaces:
        if space.skipped:
            typer.echo(f"Patient/{space.patient_id} : laissé ({space.skipped})")
            continue
        counts = ", ".join(f"{t} {n}" for t, n in sorted(space.erased.items()))
        typer.echo(
            f"Patient/{space.patient_id} (archivé jusqu’au {french_date(space.archive_until_us)}) : "
            f"{space.resources} ressource(s) {verb}(s) — {counts}"
            + (f" ; {space.versions} version(s)" if not dry_run else "")
            + (f" ; gardé(s), car partagé(s) avec d’autres : {', '.join(space.kept)}" if space.kept else "")
        )
    done = len(report.purged)
    if dry_run:
        typer.echo(f"{done} espace(s) à effacer (simulation : rien n’a été effacé).")
    else:
        typer.echo(f"{done} espace(s) effacé(s).")
