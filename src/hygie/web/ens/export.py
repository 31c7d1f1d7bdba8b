"""ENS "Exporter": the whole record as a FHIR Bundle (JSON file) and a readable PDF summary.

Both are read through the door as the visitor (``Patient/[id]/$everything``, every page, and the
documents' contents): what the visitor may not see (a document masked from a parent, not yet
announced to the patient) is not in them. See ``domain/ens/export.py``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens.export import binary_ids, export_bundle, render_summary, summary_of
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Visitor, person_name

__all__ = ["everything", "routes"]

_MAX_RESOURCES = 200_000


async def everything(ens: Ens, visitor: Visitor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The visitor's view of the record: the compartment (with the Patient) and what it points to
    outside it (practitioners, organisations, medications…), every page of ``$everything``."""
    matches, included = await ens.door.search_with_includes(
        visitor.caller, f"Patient/{visitor.patient_id}/$everything", [], limit=_MAX_RESOURCES
    )
    return matches, list(included.values())


def _file_name(visitor: Visitor, label: str, suffix: str, now_us: int) -> str:
    day = dt.datetime.fromtimestamp(now_us // 1_000_000, tz=dt.UTC).strftime("%Y-%m-%d")
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    slug = "-".join("".join(c if c.isalnum() else " " for c in ascii_label).split()) or "dossier"
    return f"{suffix}-{slug}-{day}"


def routes(ens: Ens) -> list[BaseRoute]:
    async def page(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        return await ens.page(request, visitor, "ens/export/index.html", title="Exporter mon dossier")

    async def bundle(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        now = ens.clock()
        matches, included = await everything(ens, visitor)
        contents = []
        for binary_id in binary_ids(matches):
            try:
                content = await ens.door.read(visitor.caller, "Binary", binary_id)
            except PortalError as error:
                if error.status in (403, 404, 410):
                    continue
                raise
            if content is not None:
                contents.append(content)
        body = export_bundle([*matches, *included, *contents], base_url=ens.door.service.base_url, now_us=now)
        name = _file_name(visitor, visitor.space.label, "dossier-sante", now)
        return Response(
            orjson.dumps(body),
            media_type="application/fhir+json",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.json"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def pdf(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        now = ens.clock()
        matches, _included = await everything(ens, visitor)
        patient = next(
            (r for r in matches if r.get("resourceType") == "Patient" and r.get("id") == visitor.patient_id),
            None,
        )
        if patient is None:
            raise PortalError(404, "Ce dossier n’existe pas ou n’est plus disponible.")
        summary = summary_of(matches, patient, now_us=now)
        name = _file_name(visitor, person_name(patient) or visitor.space.label, "synthese-sante", now)
        return Response(
            render_summary(summary, now_us=now),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.pdf"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return [
        ens.route("/ens/export", page),
        ens.route("/ens/export/dossier.json", bundle),
        ens.route("/ens/export/synthese.pdf", pdf),
    ]
