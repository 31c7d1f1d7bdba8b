"""``hygie alerte diffuser``: a health authority's alert to a population (``domain/ens/alerts.py``).

The criteria are evaluated inside the platform, through the FHIR service as the operator (audited
like any access); each recipient gets the alert in their health space with the reason they
received it, unless they opted out of its topic; the server then tells them by e-mail/SMS.
``--simulation`` counts the recipients without writing anything.

With ``--professionnels``, the alert goes to health professionals instead (``domain/bsp/alerts.py``):
those of the professions named by ``--profession`` (all when none is), practising in the regions or
departments named; it appears in their professional portal's messaging and home page.

Examples::

    hygie alerte diffuser --titre "Canicule : protégez-vous" --theme canicule \\
        --message "Buvez régulièrement de l'eau…" --age-min 65 --region Bretagne
    hygie alerte diffuser --professionnels --profession médecin --profession infirmier \\
        --region Bretagne --theme canicule --titre "Canicule : patients fragiles" \\
        --message "Repérez vos patients isolés…"
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Annotated

import typer

from hygie.config import load_settings
from hygie.domain.access import Caller
from hygie.domain.bsp.alerts import ProfessionalCriteria, broadcast_to_professionals, profession_code
from hygie.domain.ens.alerts import TOPICS, Alert, BroadcastReport, Criteria, broadcast, region_code

__all__ = ["alert_app"]

alert_app = typer.Typer(
    help="Alertes de santé publique diffusées dans les espaces santé.", no_args_is_help=True
)


async def _broadcast(
    alert: Alert, criteria: Criteria | ProfessionalCriteria, dry_run: bool, operator: str
) -> BroadcastReport:
    from hygie.bootstrap import clock_us, open_runtime  # noqa: PLC0415
    from hygie.web.portal.door import Door  # noqa: PLC0415

    runtime = await open_runtime(load_settings())
    try:
        if isinstance(criteria, ProfessionalCriteria):
            return await broadcast_to_professionals(
                Door(runtime.service),
                Caller.operator(operator),
                alert,
                criteria,
                broadcast_id=uuid.uuid4().hex,
                now_us=clock_us(),
                dry_run=dry_run,
            )
        return await broadcast(
            Door(runtime.service),
            Caller.operator(operator),
            alert,
            criteria,
            broadcast_id=uuid.uuid4().hex,
            now_us=clock_us(),
            today=date.today(),
            dry_run=dry_run,
        )
    finally:
        await runtime.close()


@alert_app.command("diffuser")
def diffuser(
    titre: Annotated[str, typer.Option(help="Titre de l’alerte (une ligne)")],
    message: Annotated[str, typer.Option(help="Texte de l’alerte, en français simple")],
    theme: Annotated[str, typer.Option(help=f"Thème : {', '.join(TOPICS)}")],
    age_min: Annotated[int | None, typer.Option("--age-min", help="Âge minimum (inclus)")] = None,
    age_max: Annotated[int | None, typer.Option("--age-max", help="Âge maximum (inclus)")] = None,
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="Région INSEE : code (53) ou nom (Bretagne); répétable"),
    ] = None,
    departement: Annotated[
        list[str] | None,
        typer.Option("--departement", help="Département : code INSEE (29, 2A, 974); répétable"),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition", help="Code d’une maladie active (system|code, SNOMED CT ou CIM-10); répétable"
        ),
    ] = None,
    condition_libelle: Annotated[
        str, typer.Option("--condition-libelle", help="Nom lisible de la maladie")
    ] = "",
    vaccin: Annotated[
        list[str] | None, typer.Option("--vaccin", help="Code du vaccin (system|code, ATC ou CVX); répétable")
    ] = None,
    statut_vaccinal: Annotated[
        str | None, typer.Option("--statut-vaccinal", help="vaccine (a été vacciné) ou non-vaccine")
    ] = None,
    vaccin_libelle: Annotated[
        str, typer.Option("--vaccin-libelle", help="Contre quoi (ex. : la grippe)")
    ] = "",
    emetteur: Annotated[str, typer.Option(help="Autorité émettrice")] = "Ministère chargé de la santé",
    simulation: Annotated[
        bool, typer.Option("--simulation", help="Compter les destinataires sans rien envoyer")
    ] = False,
    professionnels: Annotated[
        bool,
        typer.Option(
            "--professionnels",
            help="Alerter des professionnels de santé (selon leur profession et leur lieu d’exercice)",
        ),
    ] = False,
    profession: Annotated[
        list[str] | None,
        typer.Option(
            "--profession", help="Avec --professionnels : profession (code TRE_G15 ou nom); répétable"
        ),
    ] = None,
) -> None:
    """Diffuse une alerte aux personnes (ou, avec --professionnels, aux professionnels) que les
    critères désignent."""
    regions: list[str] = []
    for value in region or []:
        code = region_code(value)
        if code is None:
            raise typer.BadParameter(f"région inconnue : {value}", param_hint="--region")
        regions.append(code)
    if statut_vaccinal not in (None, "vaccine", "non-vaccine"):
        raise typer.BadParameter("vaccine ou non-vaccine", param_hint="--statut-vaccinal")
    if theme not in TOPICS:
        raise typer.BadParameter(f"thèmes possibles : {', '.join(TOPICS)}", param_hint="--theme")
    if not titre.strip() or not message.strip():
        raise typer.BadParameter("le titre et le message ne peuvent pas être vides")
    alert = Alert(titre.strip(), message.strip(), theme, emetteur)
    if professionnels:
        citizens_only = [age_min, age_max, condition, vaccin, statut_vaccinal]
        if any(value not in (None, []) for value in citizens_only):
            raise typer.BadParameter(
                "l’âge, la maladie et la vaccination désignent des patients, pas des professionnels",
                param_hint="--professionnels",
            )
        codes: list[str] = []
        for value in profession or []:
            code = profession_code(value)
            if code is None:
                raise typer.BadParameter(f"profession inconnue : {value}", param_hint="--profession")
            codes.append(code)
        pro_criteria = ProfessionalCriteria(
            tuple(codes), tuple(regions), tuple(d.upper() for d in departement or [])
        )
        if pro_problems := pro_criteria.problems():
            raise typer.BadParameter("; ".join(pro_problems))
        report = asyncio.run(_broadcast(alert, pro_criteria, simulation, "hygie alerte"))
        verb = "seraient destinataires" if simulation else "ont reçu l’alerte"
        typer.echo(
            f"{report.matched} professionnel(s) concerné(s) ; "
            f"{report.matched if simulation else len(report.sent)} {verb}. Diffusion {report.broadcast_id}."
        )
        return
    if profession:
        raise typer.BadParameter(
            "--profession ne s’emploie qu’avec --professionnels", param_hint="--profession"
        )
    criteria = Criteria(
        age_min=age_min,
        age_max=age_max,
        regions=tuple(regions),
        departments=tuple(d.upper() for d in departement or []),
        conditions=tuple(condition or []),
        condition_label=condition_libelle,
        vaccines=tuple(vaccin or []),
        vaccinated=None if statut_vaccinal is None else statut_vaccinal == "vaccine",
        vaccine_label=vaccin_libelle,
    )
    problems = criteria.problems()
    if problems:
        raise typer.BadParameter("; ".join(problems))
    report = asyncio.run(_broadcast(alert, criteria, simulation, "hygie alerte"))
    verb = "seraient destinataires" if simulation else "ont reçu l’alerte"
    typer.echo(
        f"{report.matched} personne(s) concernée(s), {report.opted_out} ont refusé ce thème ; "
        f"{report.matched - report.opted_out if simulation else len(report.sent)} {verb}. "
        f"Diffusion {report.broadcast_id}."
    )
