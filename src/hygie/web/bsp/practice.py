"""BSP "Mon activité": the professional's practice indicators, counted through the door.

``GET /bsp/activite`` shows my patients (the records open to me, and by kind of care relation),
the renewal requests waiting for me, and, month by month over the last twelve months, the
documents I deposited, the messages I sent and received, the prescription lines I wrote and the
renewal requests I answered — a table, and the same numbers as a bar chart (SVG drawn by pygal,
shown as an ``<img>`` whose text alternative sums them up).

What is counted and why is in :mod:`hygie.domain.bsp.practice`. Every number is a
``_summary=count`` search made as the professional: the store counts under the access policy's
restriction (nothing hidden from them is counted, no resource is read), and each count is in the
audit trail like any search. An indicator the policy refuses to this professional altogether
(a search of a type their profession may not search) is shown as unavailable, not as zero.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.access import Caller
from hygie.domain.bsp import practice as rules
from hygie.web.bsp.core import Bsp
from hygie.web.ens.vitals import _pygal
from hygie.web.portal.door import Door, PortalError, as_json
from hygie.web.portal.forms import Submitted
from hygie.web.portal.session import Professional

__all__ = ["Practice", "count", "draw", "gather", "routes"]


@dataclass(slots=True)
class Practice:
    """The numbers of the page (None: the policy does not let this professional count them)."""

    months: list[rules.Month]
    patients: int | None = None
    relations: dict[str, int | None] = field(default_factory=dict)
    open_renewals: int | None = None
    monthly: dict[str, list[int] | None] = field(default_factory=dict)

    def totals(self) -> dict[str, int | None]:
        return {key: (sum(series) if series is not None else None) for key, series in self.monthly.items()}


async def count(door: Door, caller: Caller, resource_type: str, params: list[tuple[str, str]]) -> int | None:
    """One ``_summary=count`` search as ``caller``; None when the policy refuses it altogether."""
    if ("_summary", "count") not in params:
        params = [*params, ("_summary", "count")]
    try:
        response = await door.call(caller, "GET", resource_type, params)
    except PortalError as error:
        if error.status == 403:
            return None
        raise
    return int(as_json(response.body).get("total") or 0)


async def gather(door: Door, caller: Caller, me: str, now: datetime) -> Practice:
    """Every number of the page, counted as the professional ``me`` (``Practitioner/…``)."""
    practice = Practice(rules.last_months(now))
    practice.patients = await count(door, caller, "Patient", [])
    for relation in rules.RELATIONS:
        practice.relations[relation.key] = await count(door, caller, "Patient", [(relation.criterion, me)])
    practice.open_renewals = await count(door, caller, "Task", [("owner", me), *rules.OPEN_RENEWALS])
    for indicator in rules.MONTHLY:
        series: list[int] = []
        for month in practice.months:
            found = await count(
                door, caller, indicator.resource_type, rules.month_criteria(indicator, me, month)
            )
            if found is None:
                break
            series.append(found)
        practice.monthly[indicator.key] = series if len(series) == len(practice.months) else None
    return practice


def routes(bsp: Bsp) -> list[BaseRoute]:
    async def page(request: Request, visitor: Professional, form: Submitted | None) -> Response:
        now = datetime.fromtimestamp(bsp.clock() / 1_000_000, UTC)
        practice = await gather(bsp.door, visitor.caller, visitor.practitioner_ref, now)
        counts = {k: v for k, v in practice.monthly.items() if v is not None}
        return await bsp.page(
            request,
            visitor,
            "bsp/activite.html",
            title="Mon activité",
            practice=practice,
            indicators=rules.MONTHLY,
            relations=rules.RELATIONS,
            totals=practice.totals(),
            emergency=len(visitor.emergency),
            chart=_data_uri(draw(practice)),
            chart_text=rules.chart_summary(practice.months, counts),
        )

    return [bsp.route("/bsp/activite", page)]


def _data_uri(svg: str) -> str:
    """The chart inline, as an image: no second request recounts everything, and nothing in an
    ``<img>`` runs (the pages' CSP allows ``data:`` images)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def draw(practice: Practice) -> str:
    """The monthly indicators as grouped bars (pygal, SVG text)."""
    pygal = _pygal()
    from pygal.style import Style  # noqa: PLC0415

    style = Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#161616",
        foreground_strong="#161616",
        foreground_subtle="#666666",
        colors=("#000091", "#6a6af4", "#009081", "#c9191e", "#b34000"),
        font_family="Marianne, Arial, sans-serif",
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=14,
        value_font_size=12,
        no_data_font_size=28,
        guide_stroke_color="#dddddd",
        guide_stroke_dasharray="1,0",
        major_guide_stroke_dasharray="1,0",
    )
    chart: Any = pygal.Bar(
        style=style,
        js=[],
        disable_xml_declaration=True,
        width=800,
        height=380,
        show_legend=True,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        x_label_rotation=0,
        truncate_label=-1,
        no_data_text="Aucune activité",
        show_x_guides=False,
        show_y_guides=True,
        print_values=False,
        value_formatter=lambda v: f"{v:.0f}",
    )
    chart.x_labels = [m.short for m in practice.months]
    # whole numbers on the axis: at most six graduations from 0 to the highest bar
    highest = max((max(s) for s in practice.monthly.values() if s), default=0)
    step = max(1, -(-highest // 5))
    chart.y_labels = list(range(0, max(highest, 1) + step, step))
    for indicator in rules.MONTHLY:
        series = practice.monthly.get(indicator.key)
        if series is not None:
            chart.add(indicator.label, series)
    svg: str = chart.render(is_unicode=True)
    return svg
