"""ENS « Mesures »: the person's measures, their charts, entry, and personal alert thresholds.

The rules are in :mod:`hygie.domain.ens.vitals` (codes, checks, thresholds) and
:mod:`hygie.domain.ens.vitals_watch` (who is told of a crossing, and when); this module adapts them
to pages. Charts are SVG drawn on the server by pygal and shown as ``<img>`` (with the same
numbers in a table and a summary as alternative text).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from hygie.domain.ens import vitals as rules
from hygie.domain.ens.vitals_watch import ThresholdWatch
from hygie.web.ens.core import Ens
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import Submitted
from hygie.web.portal.provenance import app_names
from hygie.web.portal.session import Visitor, person_name

__all__ = ["routes"]

PERIODS: dict[str, tuple[str, int | None]] = {
    "30j": ("30 jours", 30),
    "1an": ("1 an", 366),
    "tout": ("Tout", None),
}
PERIOD_WORDS = {"30j": "sur les 30 derniers jours", "1an": "sur la dernière année", "tout": "depuis le début"}
DEFAULT_PERIOD = "1an"
SVG_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # the SVG is an image: nothing in it may run or load anything (pygal adds a small script)
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
}


def _now(ens: Ens) -> datetime:
    return datetime.fromtimestamp(ens.clock() / 1_000_000, UTC)


def watch_of(ens: Ens) -> ThresholdWatch:
    runtime = ens.services["runtime"]
    watch = ens.services.get("vitals-watch")
    if watch is None:
        # the age of majority of the settings, as the server's background sweep (delivery.py)
        watch = ThresholdWatch(
            ens.door, runtime.kv, runtime.outbox, ens.clock, majority_age=runtime.settings.majority_age
        )
        ens.services["vitals-watch"] = watch
    assert isinstance(watch, ThresholdWatch)
    return watch


def routes(ens: Ens) -> list[BaseRoute]:
    watch = watch_of(ens)

    def names_for(visitor: Visitor) -> dict[str, str]:
        own = "vous" if visitor.space.own else visitor.space.label
        names = {visitor.patient_ref: own}
        if visitor.actor_ref != visitor.patient_ref:
            names[visitor.actor_ref] = "vous"
        return names

    async def with_professionals(visitor: Visitor, observations: list[dict[str, Any]]) -> dict[str, str]:
        """The names of the professionals who took these measures (read from the directory) and of
        the apps that sent them (from the client registry, by their ``meta.source``)."""
        names = names_for(visitor)
        auth = ens.services["runtime"].auth
        names.update(await app_names(auth.clients if auth is not None else None, observations))
        refs = {
            str(p.get("reference"))
            for o in observations
            for p in o.get("performer") or []
            if isinstance(p, dict)
            and str(p.get("reference", "")).startswith("Practitioner/")
            and not p.get("display")
        }
        for ref in sorted(refs)[:20]:
            practitioner = await ens.door.read(visitor.caller, "Practitioner", ref.split("/", 1)[1])
            if practitioner:
                names[ref] = person_name(practitioner)
        return names

    async def series(
        visitor: Visitor, measure: rules.Measure, period: str
    ) -> tuple[list[rules.Reading], list[dict[str, Any]]]:
        params = [
            ("patient", visitor.patient_id),
            ("code", rules.search_codes([measure])),
            ("_sort", "-date"),
            ("_count", "200"),
        ]
        days = PERIODS[period][1]
        if days is not None:
            since = (_now(ens) - timedelta(days=days)).astimezone(rules.PARIS).date()
            params.append(("date", f"ge{since.isoformat()}"))
        observations = await ens.door.search(visitor.caller, "Observation", params, limit=2000)
        names = await with_professionals(visitor, observations)
        return rules.readings(measure, observations, names), observations

    async def thresholds(visitor: Visitor) -> dict[str, tuple[rules.Ranges, Any]]:
        goals = await ens.door.search(
            visitor.caller,
            "Goal",
            [("patient", visitor.patient_id), ("lifecycle-status", "active")],
            limit=100,
        )
        return rules.thresholds_of(goals)

    # ------------------------------------------------------------------ pages
    async def overview(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        await watch.check(visitor.caller, visitor.patient_id)
        notices = await watch.notices(visitor.caller, visitor.patient_id)
        limits = await thresholds(visitor)
        # every tile's latest value in one $lastn: the five latest of each code (an entered-in-
        # error value may hide behind the first), then each measure's newest valid reading
        latest = await ens.door.lastn(
            visitor.caller,
            [("patient", visitor.patient_id), ("code", rules.search_codes(rules.MEASURES.values()))],
            per_code=5,
        )
        first = {m.key: rules.readings(m, latest, {}) for m in rules.MEASURES.values()}
        newest = {found[-1].id for found in first.values() if found}
        names = await with_professionals(visitor, [o for o in latest if str(o.get("id")) in newest])
        tiles: list[dict[str, Any]] = []
        for measure in rules.MEASURES.values():
            found = rules.readings(measure, latest, names)
            last = found[-1] if found else None
            tiles.append(
                {
                    "measure": measure,
                    "value": rules.shown(measure, last.values) if last else None,
                    "when": rules.french_date(last.when, with_time=False) if last else None,
                    "source": last.source.label if last else None,
                    "limits": _limits_words(measure, limits.get(measure.key, ({}, None))[0]),
                }
            )
        return await ens.page(
            request, visitor, "ens/mesures/index.html", title="Mes mesures", notices=notices, tiles=tiles
        )

    async def detail_page(
        request: Request,
        visitor: Visitor,
        measure: rules.Measure,
        *,
        entry: dict[str, str] | None = None,
        entry_errors: dict[str, str] | None = None,
        limits_form: dict[str, str] | None = None,
        limits_errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        period = request.query_params.get("periode", DEFAULT_PERIOD)
        if period not in PERIODS:
            period = DEFAULT_PERIOD
        found, _ = await series(visitor, measure, period)
        limits = (await thresholds(visitor)).get(measure.key)
        ranges = limits[0] if limits else {}
        notices = [
            n for n in await watch.notices(visitor.caller, visitor.patient_id) if n.measure_key == measure.key
        ]
        if limits_form is None:
            limits_form = {}
            for f in measure.fields:
                low, high = ranges.get(f.loinc, (None, None))
                limits_form[f"bas-{f.name}"] = "" if low is None else rules.fr_number(low)
                limits_form[f"haut-{f.name}"] = "" if high is None else rules.fr_number(high)
        today = _now(ens).astimezone(rules.PARIS)
        rows = [
            {
                "when": rules.french_date(r.when),
                "iso": r.when.astimezone(rules.PARIS).isoformat(),
                "value": rules.shown(measure, r.values),
                "source": r.source,
            }
            for r in reversed(found)
        ]
        return await ens.page(
            request,
            visitor,
            "ens/mesures/mesure.html",
            status=status,
            title=measure.label,
            measure=measure,
            period=period,
            periods=PERIODS,
            summary=rules.summary(measure, found, PERIOD_WORDS[period]),
            rows=rows,
            notices=notices,
            has_limits=bool(limits),
            limits_words=_limits_words(measure, ranges),
            entry=entry or {"date": today.date().isoformat(), "heure": today.strftime("%H:%M")},
            entry_errors=entry_errors or {},
            limits_form=limits_form,
            limits_errors=limits_errors or {},
            today=today.date().isoformat(),
        )

    def measure_from(request: Request) -> rules.Measure:
        measure = rules.MEASURES.get(str(request.path_params.get("cle", "")))
        if measure is None:
            raise PortalError(404, "Cette mesure n’existe pas.")
        return measure

    async def detail(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        measure = measure_from(request)
        await watch.check(visitor.caller, visitor.patient_id)
        return await detail_page(request, visitor, measure)

    async def add(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        measure = measure_from(request)
        typed = {k: form.get(k) for k in (*(f.name for f in measure.fields), "date", "heure")}
        entry, errors = rules.parse_entry(measure, typed, _now(ens))
        if entry is None:
            await ens.failed(visitor, form)
            return await detail_page(request, visitor, measure, entry=typed, entry_errors=errors, status=400)
        # a relative acting for the person signs the value with their own name
        name = next((s.label for s in visitor.spaces if s.own), "") if visitor.space.related_id else ""
        await ens.door.create(
            visitor.caller, rules.observation(entry, visitor.patient_ref, visitor.actor_ref, name)
        )
        crossed = await watch.check(visitor.caller, visitor.patient_id)
        message = f"Valeur enregistrée : {rules.shown(measure, entry.values)}."
        if crossed:
            message += " Attention : elle franchit l’un de vos seuils d’alerte."
        return await ens.done(visitor, form, f"/ens/mesures/{measure.key}", message)

    async def set_limits(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        measure = measure_from(request)
        names = [f"{side}-{f.name}" for f in measure.fields for side in ("bas", "haut")]
        typed = {n: form.get(n) for n in names}
        if form.get("action") == "supprimer":
            typed = dict.fromkeys(names, "")
        ranges, errors = rules.parse_thresholds(measure, typed)
        if ranges is None:
            await ens.failed(visitor, form)
            return await detail_page(
                request, visitor, measure, limits_form=typed, limits_errors=errors, status=400
            )
        existing = (await thresholds(visitor)).get(measure.key)
        today = _now(ens).astimezone(rules.PARIS).date()
        empty = all(low is None and high is None for low, high in ranges.values())
        if existing is not None:
            goal = dict(existing[1])
            version = str((goal.get("meta") or {}).get("versionId") or "") or None
            await ens.door.update(
                visitor.caller,
                rules.goal(measure, ranges, visitor.patient_ref, visitor.actor_ref, today, goal),
                version=version,
            )
        elif not empty:
            await ens.door.create(
                visitor.caller, rules.goal(measure, ranges, visitor.patient_ref, visitor.actor_ref, today)
            )
        if not empty:
            await watch.follow(visitor.patient_id)
        message = (
            "Seuils supprimés."
            if empty
            else "Seuils enregistrés : vous serez prévenu(e) s’ils sont franchis."
        )
        return await ens.done(visitor, form, f"/ens/mesures/{measure.key}", message)

    async def dismiss(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        flag = await ens.door.read(visitor.caller, "Flag", str(request.path_params["id"]))
        if flag is None or not await watch.dismiss(visitor.caller, visitor.patient_id, flag):
            raise PortalError(404, "Cette alerte n’existe pas ou n’est plus disponible.")
        back = form.get("retour")
        target = back if back.startswith("/ens/mesures") and "//" not in back else "/ens/mesures"
        return await ens.done(visitor, form, target, "Alerte marquée comme vue.")

    async def chart(request: Request, visitor: Visitor, _form: Submitted | None) -> Response:
        measure = measure_from(request)
        period = request.query_params.get("periode", DEFAULT_PERIOD)
        if period not in PERIODS:
            period = DEFAULT_PERIOD
        found, _ = await series(visitor, measure, period)
        limits = (await thresholds(visitor)).get(measure.key)
        svg = draw(measure, found, limits[0] if limits else {})
        return Response(svg, media_type="image/svg+xml", headers=SVG_HEADERS)

    return [
        ens.route("/ens/mesures", overview),
        ens.route("/ens/mesures/alertes/{id}/vu", dismiss, methods=("POST",)),
        ens.route("/ens/mesures/{cle}", detail),
        ens.route("/ens/mesures/{cle}", add, methods=("POST",)),
        ens.route("/ens/mesures/{cle}/seuils", set_limits, methods=("POST",)),
        ens.route("/ens/mesures/{cle}/graphique.svg", chart),
    ]


def _limits_words(measure: rules.Measure, ranges: rules.Ranges) -> str | None:
    parts: list[str] = []
    for f in measure.fields:
        low, high = ranges.get(f.loinc, (None, None))
        name = f"{f.label.split(' (')[0].lower()} : " if measure.panel else ""
        bits = []
        if low is not None:
            bits.append(f"bas {rules.fr_number(low)}")
        if high is not None:
            bits.append(f"haut {rules.fr_number(high)}")
        if bits:
            parts.append(name + ", ".join(bits))
    return (" ; ".join(parts) + f" {measure.unit}") if parts else None


def _pygal() -> Any:
    """pygal, without the import hook it adds to ``sys.meta_path`` on import.

    That hook (``PluginImportFixer``, for ``pygal.maps`` plugins, which we do not use) only has
    the legacy ``find_module``: on Python 3.11 every later failed import anywhere in the process
    goes through it with an ``ImportWarning``. We take it out again.
    """
    import pygal  # noqa: PLC0415

    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]
    return pygal


def draw(measure: rules.Measure, series: list[rules.Reading], ranges: rules.Ranges) -> str:
    """The chart of a series, as SVG text (pygal; no script runs in an ``<img>``)."""
    pygal = _pygal()
    from pygal.style import Style  # noqa: PLC0415

    colours = ("#000091", "#c9191e", "#6a6af4", "#e1000f")
    style = Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#161616",
        foreground_strong="#161616",
        foreground_subtle="#666666",
        colors=colours,
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
    chart = pygal.DateTimeLine(
        style=style,
        js=[],
        disable_xml_declaration=True,
        width=800,
        height=380,
        show_legend=True,
        legend_at_bottom=True,
        x_label_rotation=0,
        truncate_label=-1,
        x_value_formatter=lambda d: d.astimezone(rules.PARIS).strftime("%d/%m/%y"),
        value_formatter=rules.fr_number,
        no_data_text="Aucune valeur",
        dots_size=3,
        show_x_guides=False,
        show_y_guides=True,
        y_title=measure.unit,
    )
    for i, f in enumerate(measure.fields):
        points = [(r.when, r.values[i]) for r in series if r.values[i] is not None]
        label = f.label.split(" (")[0] if measure.panel else measure.label
        chart.add(label, points)
    if series:
        first, last = series[0].when, series[-1].when
        if first == last:
            first, last = first - timedelta(hours=12), last + timedelta(hours=12)
        for f in measure.fields:
            low, high = ranges.get(f.loinc, (None, None))
            name = f" {f.label.split(' (')[0].lower()}" if measure.panel else ""
            for bound, word in ((low, "Seuil bas"), (high, "Seuil haut")):
                if bound is not None:
                    chart.add(
                        f"{word}{name} ({rules.fr_number(bound)})",
                        [(first, bound), (last, bound)],
                        show_dots=False,
                        stroke_style={"width": 2, "dasharray": "8, 5"},
                    )
    svg: str = chart.render(is_unicode=True)
    return svg
