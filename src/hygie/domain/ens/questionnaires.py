"""Evaluations: satisfaction and experience questionnaires (PREMs) after a hospital stay.

Two French questionnaires ship with Hygie as FHIR ``Questionnaire`` resources (JSON beside this
module), built on the themes and the 4-point answer scale of the HAS national e-Satis surveys:
``esatis-48h-mco`` after a stay of more than 48 hours in medicine, surgery or obstetrics (an
``Encounter`` of class ``IMP``), and ``esatis-mco-ca`` after an ambulatory surgery (class ``SS``,
short stay). They are reference data (outside any record): :func:`install` loads them as the
operator (the demo, the tests; an operator may load others the same way).

A questionnaire is **proposed** for each such stay of the person that ended in the last
``weeks`` weeks and that they have not answered yet (a ``QuestionnaireResponse`` of theirs names
the ``encounter``). The answers are **validated** against the Questionnaire — required items,
answer types (choice among the options, integer within ``minValue``/``maxValue``, boolean,
text within ``maxLength``) — with a French message per question, and saved as a
``QuestionnaireResponse`` (status ``completed``, ``author`` = who answered: the patient or the
relative acting for them, ``subject`` = the patient, ``encounter`` = the stay).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from hygie.domain.access import Caller
from hygie.domain.ens.messaging import french_datetime, instant_of
from hygie.domain.ens.records_port import Records

__all__ = [
    "REFERENCE",
    "Proposal",
    "Question",
    "install",
    "proposals",
    "questions",
    "reference_questionnaires",
    "response_resource",
    "validate",
]

REFERENCE = ("questionnaire-esatis-48h-mco.json", "questionnaire-esatis-mco-ca.json")
FOR_CLASS = {"IMP": "esatis-48h-mco", "SS": "esatis-mco-ca"}
MIN_STAY = {"IMP": timedelta(hours=48)}
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
TEXT_LIMIT = 2000


def reference_questionnaires() -> list[dict[str, Any]]:
    """The questionnaires shipped with Hygie."""
    folder = files("hygie.domain.ens")
    return [json.loads(folder.joinpath(name).read_text(encoding="utf-8")) for name in REFERENCE]


async def install(records: Records, caller: Caller) -> list[str]:
    """Load (or refresh) the shipped questionnaires on the server, at their own ids."""
    return [str((await records.update(caller, q))["id"]) for q in reference_questionnaires()]


# -- the form ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: str
    type: str  # choice | integer | boolean | text | string | decimal | date
    required: bool
    options: tuple[tuple[str, str], ...] = ()  # (code, display)
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class Section:
    link_id: str
    title: str
    questions: tuple[Question, ...]


def _ext_int(item: dict[str, Any], url: str) -> int | None:
    for ext in item.get("extension", []) or []:
        if isinstance(ext, dict) and ext.get("url") == url and isinstance(ext.get("valueInteger"), int):
            value: int = ext["valueInteger"]
            return value
    return None


def _question(item: dict[str, Any]) -> Question:
    options = tuple(
        (
            str(o["valueCoding"].get("code")),
            str(o["valueCoding"].get("display") or o["valueCoding"].get("code")),
        )
        for o in item.get("answerOption", []) or []
        if isinstance(o, dict) and isinstance(o.get("valueCoding"), dict)
    )
    return Question(
        link_id=str(item["linkId"]),
        text=str(item.get("text") or ""),
        type=str(item.get("type")),
        required=bool(item.get("required")),
        options=options,
        minimum=_ext_int(item, MIN_VALUE),
        maximum=_ext_int(item, MAX_VALUE),
        max_length=item.get("maxLength") if isinstance(item.get("maxLength"), int) else None,
    )


def questions(questionnaire: dict[str, Any]) -> list[Section]:
    """The questionnaire as sections of questions (top-level questions form an untitled one)."""
    sections: list[Section] = []
    loose: list[Question] = []
    for item in questionnaire.get("item", []) or []:
        if item.get("type") == "group":
            sections.append(
                Section(
                    str(item["linkId"]),
                    str(item.get("text") or ""),
                    tuple(
                        _question(i)
                        for i in item.get("item", []) or []
                        if i.get("type") not in ("group", "display")
                    ),
                )
            )
        elif item.get("type") != "display":
            loose.append(_question(item))
    if loose:
        sections.insert(0, Section("", "", tuple(loose)))
    return sections


def _answer(question: Question, raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """The FHIR answer for a typed value, or the French reason it is not one."""
    if question.type == "choice":
        chosen = next(((c, d) for c, d in question.options if c == raw), None)
        if chosen is None:
            return None, "Choisissez une des réponses proposées."
        return {"valueCoding": {"system": "", "code": chosen[0], "display": chosen[1]}}, None
    if question.type == "boolean":
        if raw not in ("oui", "non"):
            return None, "Répondez par oui ou par non."
        return {"valueBoolean": raw == "oui"}, None
    if question.type == "integer":
        try:
            number = int(raw.strip().replace(" ", ""))
        except ValueError:
            return None, "Indiquez un nombre entier, par exemple 8."
        low, high = question.minimum, question.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            return (
                None,
                f"Indiquez un nombre entre {low if low is not None else '…'} et {high if high is not None else '…'}.",
            )
        return {"valueInteger": number}, None
    if question.type in ("text", "string"):
        limit = question.max_length or TEXT_LIMIT
        if len(raw) > limit:
            return None, f"Votre réponse est trop longue ({len(raw)} caractères, {limit} au plus)."
        return {"valueString": raw}, None
    return None, "Ce type de question n’est pas pris en charge."


def validate(
    questionnaire: dict[str, Any], values: Mapping[str, str]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Typed answers by linkId, and French errors by linkId (empty when all is well)."""
    answers: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for section in questions(questionnaire):
        for question in section.questions:
            raw = values.get(question.link_id, "").strip()
            if not raw:
                if question.required:
                    errors[question.link_id] = "Répondez à cette question."
                continue
            answer, error = _answer(question, raw)
            if error:
                errors[question.link_id] = error
            elif answer is not None:
                answers[question.link_id] = answer
    return answers, errors


def _option_system(questionnaire: dict[str, Any], link_id: str, code: str) -> str:
    def walk(items: Iterable[dict[str, Any]]) -> str | None:
        for item in items:
            if item.get("linkId") == link_id:
                for option in item.get("answerOption", []) or []:
                    coding = option.get("valueCoding") or {}
                    if coding.get("code") == code:
                        return str(coding.get("system") or "")
            found = walk(item.get("item", []) or [])
            if found is not None:
                return found
        return None

    return walk(questionnaire.get("item", []) or []) or ""


def response_resource(
    questionnaire: dict[str, Any],
    answers: Mapping[str, dict[str, Any]],
    *,
    patient_ref: str,
    author_ref: str,
    encounter_ref: str | None,
    now_us: int,
) -> dict[str, Any]:
    """The completed QuestionnaireResponse, mirroring the questionnaire's groups."""

    def item_of(question: Question) -> dict[str, Any] | None:
        answer = answers.get(question.link_id)
        if answer is None:
            return None
        if "valueCoding" in answer:
            coding = dict(answer["valueCoding"])
            coding["system"] = _option_system(questionnaire, question.link_id, coding["code"])
            answer = {"valueCoding": {k: v for k, v in coding.items() if v}}
        return {"linkId": question.link_id, "text": question.text, "answer": [answer]}

    items: list[dict[str, Any]] = []
    for section in questions(questionnaire):
        inner = [i for q in section.questions if (i := item_of(q)) is not None]
        if not section.link_id:
            items.extend(inner)
        elif inner:
            items.append({"linkId": section.link_id, "text": section.title, "item": inner})
    canonical = str(questionnaire.get("url") or f"Questionnaire/{questionnaire.get('id')}")
    if questionnaire.get("version"):
        canonical += f"|{questionnaire['version']}"
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": "completed",
        "subject": {"reference": patient_ref},
        "authored": instant_of(now_us),
        "author": {"reference": author_ref},
        "item": items,
    }
    if encounter_ref:
        response["encounter"] = {"reference": encounter_ref}
    return response


# -- what to propose ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    questionnaire_id: str
    title: str
    encounter_id: str
    place: str
    ended: str  # French date


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def proposals(
    encounters: Iterable[dict[str, Any]],
    responses: Iterable[dict[str, Any]],
    questionnaires: Mapping[str, dict[str, Any]],
    *,
    now: datetime,
    weeks: int,
) -> list[Proposal]:
    """The questionnaires to propose: one per recent stay of the right kind not yet answered."""
    answered = {
        str((r.get("encounter") or {}).get("reference") or "")
        for r in responses
        if r.get("status") in ("completed", "amended")
    }
    out: list[tuple[datetime, Proposal]] = []
    for encounter in encounters:
        klass = str((encounter.get("class") or {}).get("code") or "")
        qid = FOR_CLASS.get(klass)
        if qid is None or qid not in questionnaires or encounter.get("status") not in ("finished", None):
            continue
        period = encounter.get("period") or {}
        start, end = _parse(period.get("start")), _parse(period.get("end"))
        if end is None or end > now or now - end > timedelta(weeks=weeks):
            continue
        if klass in MIN_STAY and (start is None or end - start < MIN_STAY[klass]):
            continue
        if f"Encounter/{encounter.get('id')}" in answered:
            continue
        place = str((encounter.get("serviceProvider") or {}).get("display") or "")
        out.append(
            (
                end,
                Proposal(
                    qid,
                    str(questionnaires[qid].get("title") or "Questionnaire"),
                    str(encounter.get("id")),
                    place,
                    french_datetime(period.get("end")).split(" à ")[0],
                ),
            )
        )
    return [p for _, p in sorted(out, key=lambda pair: pair[0], reverse=True)]
