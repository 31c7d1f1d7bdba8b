"""Everything of a record, to take away: a FHIR Bundle, and a readable PDF summary in French.

* :func:`export_bundle` — the resources of the person's ``Patient/[id]/$everything`` (every page,
  read as the person: what they may not see is not there), plus the content of their documents
  (``Binary``), as one ``collection`` Bundle (http://hl7.org/fhir/R4/bundle.html) — the format
  any FHIR tool reads back;
* :func:`summary_of` and :func:`render_summary` — a one-to-few-page summary: identity, allergies,
  health problems, treatments, vaccinations, last measurements, the list of documents, and the
  date it was made. fpdf2's core Helvetica font covers Latin-1 only: typographic characters
  outside it are mapped to their ASCII twins (all French accented letters are Latin-1).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fpdf import FPDF

from hygie.domain.ens.controls import french_date, french_datetime, parse_us
from hygie.domain.french import to_latin1

__all__ = ["Summary", "binary_ids", "export_bundle", "render_summary", "summary_of", "to_latin1"]

_WRAP = 95
VITAL_SIGNS = "vital-signs"


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return str(resource.get("resourceType")), str(resource.get("id"))


def export_bundle(resources: Iterable[dict[str, Any]], *, base_url: str, now_us: int) -> dict[str, Any]:
    """One ``collection`` Bundle of ``resources`` (each once, in the order given)."""
    seen: set[tuple[str, str]] = set()
    entries = []
    for resource in resources:
        key = _key(resource)
        if key in seen or not resource.get("id"):
            continue
        seen.add(key)
        entries.append({"fullUrl": f"{base_url.rstrip('/')}/{key[0]}/{key[1]}", "resource": resource})
    stamp = dt.datetime.fromtimestamp(now_us // 1_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": stamp},
        "type": "collection",
        "timestamp": stamp,
        "entry": entries,
    }


def binary_ids(resources: Iterable[dict[str, Any]]) -> list[str]:
    """The Binary ids the DocumentReferences point to (``Binary/x`` or ``…/fhir/Binary/x``)."""
    out: list[str] = []
    for resource in resources:
        if resource.get("resourceType") != "DocumentReference":
            continue
        for content in resource.get("content", []) or []:
            url = str(((content or {}).get("attachment") or {}).get("url") or "")
            if "Binary/" in url:
                bid = url.rsplit("Binary/", 1)[1].split("/", maxsplit=1)[0].split("?", maxsplit=1)[0]
                if bid and bid not in out:
                    out.append(bid)
    return out


# -- the summary -----------------------------------------------------------------------------------


def _text(concept: Any) -> str:
    """A CodeableConcept as words: its text, else its first display, else its first code."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []) or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding", []) or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return ""


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code")) for c in concept.get("coding", []) or [] if isinstance(c, dict)}


def _date(text: Any) -> str:
    return french_date(parse_us(text))


def _status(resource: dict[str, Any], field_name: str) -> str:
    return "/".join(sorted(_codes(resource.get(field_name)))) or str(resource.get(field_name) or "")


def _name(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    chosen = next((n for n in names if n.get("use") == "usual"), None) or next(
        (n for n in names if n.get("use") == "official"), names[0]
    )
    given = " ".join(chosen.get("given", []) or [])
    family = str(chosen.get("family", "")).upper()
    return " ".join(p for p in (given, family) if p) or str(chosen.get("text", ""))


def _quantity(observation: dict[str, Any]) -> str:
    value = observation.get("valueQuantity")
    if isinstance(value, dict) and "value" in value:
        number = value["value"]
        shown = f"{number:g}".replace(".", ",") if isinstance(number, (int, float)) else str(number)
        return f"{shown} {value.get('unit') or value.get('code') or ''}".strip()
    parts = []
    for component in observation.get("component", []) or []:
        quantity = (component or {}).get("valueQuantity") or {}
        if "value" in quantity:
            number = quantity["value"]
            parts.append(f"{number:g}".replace(".", ",") if isinstance(number, (int, float)) else str(number))
    if parts:
        unit = next(
            (
                (c.get("valueQuantity") or {}).get("unit")
                for c in observation.get("component", [])
                if isinstance(c, dict)
            ),
            "",
        )
        return f"{'/'.join(parts)} {unit or ''}".strip()
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in observation:
            return str(observation[key])
    return _text(observation.get("valueCodeableConcept"))


@dataclass(slots=True)
class Summary:
    """The sections of the summary, each a list of lines."""

    name: str
    identity: list[str]
    generated: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)


_SECTION_EMPTY = "Aucune information enregistrée."


def summary_of(resources: Sequence[dict[str, Any]], patient: dict[str, Any], *, now_us: int) -> Summary:
    """The summary of a record (``resources``: what the person may see of it)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)

    identity = [f"Nom : {_name(patient)}"]
    if patient.get("birthDate"):
        identity.append(f"Date de naissance : {_date(patient['birthDate'])}")
    sex = {"female": "féminin", "male": "masculin", "other": "autre", "unknown": "inconnu"}.get(
        str(patient.get("gender")), ""
    )
    if sex:
        identity.append(f"Sexe : {sex}")
    identity.extend(
        f"Matricule INS : {identifier.get('value')}"
        for identifier in patient.get("identifier", []) or []
        if isinstance(identifier, dict) and str(identifier.get("system", "")).endswith("1.2.250.1.213.1.4.8")
    )

    def active(resource: dict[str, Any], field_name: str = "clinicalStatus") -> bool:
        status = _status(resource, field_name)
        return status not in ("inactive", "resolved", "entered-in-error", "stopped", "completed", "cancelled")

    allergies = [
        " - ".join(
            p
            for p in (
                _text(a.get("code")) or "Allergie",
                {"high": "sévère", "low": "peu sévère"}.get(str(a.get("criticality")), ""),
                f"depuis le {_date(a.get('onsetDateTime'))}" if a.get("onsetDateTime") else "",
            )
            if p
        )
        for a in by_type.get("AllergyIntolerance", [])
        if active(a) and _status(a, "verificationStatus") != "entered-in-error"
    ]
    conditions = [
        " - ".join(
            p
            for p in (
                _text(c.get("code")) or "Problème de santé",
                f"depuis le {_date(c.get('onsetDateTime'))}" if c.get("onsetDateTime") else "",
                "résolu" if not active(c) else "",
            )
            if p
        )
        for c in by_type.get("Condition", [])
        if _status(c, "verificationStatus") != "entered-in-error"
    ]
    treatments = [
        " - ".join(
            p
            for p in (
                _text(m.get("medicationCodeableConcept")) or "Médicament",
                "; ".join(str(d.get("text")) for d in m.get("dosageInstruction", []) or [] if d.get("text")),
                f"prescrit le {_date(m.get('authoredOn'))}" if m.get("authoredOn") else "",
            )
            if p
        )
        for m in by_type.get("MedicationRequest", [])
        if m.get("status") in ("active", "on-hold", None)
    ] + [
        " - ".join(
            p
            for p in (
                _text(m.get("medicationCodeableConcept")) or "Médicament",
                "; ".join(str(d.get("text")) for d in m.get("dosage", []) or [] if d.get("text")),
            )
            if p
        )
        for m in by_type.get("MedicationStatement", [])
        if m.get("status") in ("active", "intended", None)
    ]
    vaccinations = [
        " - ".join(
            p
            for p in (
                _text(i.get("vaccineCode")) or "Vaccin",
                _date(i.get("occurrenceDateTime")),
                f"lot {i['lotNumber']}" if i.get("lotNumber") else "",
            )
            if p
        )
        for i in sorted(
            by_type.get("Immunization", []), key=lambda i: str(i.get("occurrenceDateTime", "")), reverse=True
        )
        if i.get("status") != "entered-in-error"
    ]
    latest: dict[str, dict[str, Any]] = {}
    for obs in by_type.get("Observation", []):
        categories = {c for concept in obs.get("category", []) or [] for c in _codes(concept)}
        if VITAL_SIGNS not in categories or obs.get("status") == "entered-in-error":
            continue
        label = _text(obs.get("code")) or "Mesure"
        when = str(obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or "")
        if label not in latest or when > str(latest[label].get("effectiveDateTime", "")):
            latest[label] = {**obs, "effectiveDateTime": when}
    vitals = [
        f"{label} : {_quantity(obs)} ({_date(obs['effectiveDateTime'])})"
        for label, obs in sorted(latest.items())
    ]
    documents = [
        " - ".join(
            p
            for p in (
                str(d.get("description") or "") or _text(d.get("type")) or "Document",
                _date(d.get("date")),
            )
            if p
        )
        for d in sorted(
            by_type.get("DocumentReference", []), key=lambda d: str(d.get("date", "")), reverse=True
        )
        if d.get("status") != "entered-in-error"
    ]
    return Summary(
        name=_name(patient),
        identity=identity,
        generated=french_datetime(now_us),
        sections=[
            ("Allergies", allergies or [_SECTION_EMPTY]),
            ("Problèmes de santé et antécédents", conditions or [_SECTION_EMPTY]),
            ("Traitements", treatments or [_SECTION_EMPTY]),
            ("Vaccinations", vaccinations or [_SECTION_EMPTY]),
            ("Dernières mesures", vitals or [_SECTION_EMPTY]),
            ("Documents", documents or [_SECTION_EMPTY]),
        ],
    )


def render_summary(summary: Summary, *, now_us: int) -> bytes:
    """The summary as an A4 PDF (bytes starting with ``%PDF``)."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(dt.datetime.fromtimestamp(now_us // 1_000_000, tz=dt.UTC))
    title = f"Synthèse de santé - {summary.name}"
    pdf.set_title(to_latin1(title))
    pdf.set_author("Mon espace santé (Hygie)")
    pdf.set_lang("fr-FR")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, to_latin1("Synthèse de mon dossier de santé"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, to_latin1(f"Document produit le {summary.generated}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, to_latin1("Identité"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in summary.identity:
        pdf.cell(0, 5, to_latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for heading, lines in summary.sections:
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, to_latin1(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for item in lines:
            bullet = "" if item == _SECTION_EMPTY else "- "
            wrapped = textwrap.wrap(to_latin1(bullet + item), _WRAP, subsequent_indent="  ") or [""]
            for line in wrapped:
                pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", "I", 7)
    footer = to_latin1(
        "Synthèse produite à votre demande à partir de votre espace santé. Elle ne remplace pas "
        "l'avis d'un professionnel de santé."
    )
    for number in range(1, pdf.page_no() + 1):
        pdf.page = number
        pdf.set_y(-15)
        pdf.cell(0, 4, footer, align="C")
    return bytes(pdf.output())
