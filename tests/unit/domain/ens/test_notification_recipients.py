"""The one recipient rule: who is told, on which channel, of an event in a person's space
(``domain/ens/notifications.py``) — and what they are told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hygie.domain.ens.notifications import (
    NOTIFY_URL,
    Recipient,
    apply_choice,
    majority_us,
    notices,
    recipients,
)

NOW = int(datetime(2026, 5, 12, 9, 0, tzinfo=UTC).timestamp() * 1_000_000)
ROLES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def person(pid: str, birth: str, *telecom: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "telecom": list(telecom)}


def email(value: str, notify: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": "email", "value": value}
    if notify is not None:
        out["extension"] = [{"url": NOTIFY_URL, "valueBoolean": notify}]
    return out


def mobile(value: str) -> dict[str, Any]:
    return {"system": "phone", "value": value, "use": "mobile"}


def relative(rid: str, patient: str, code: str, *telecom: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "id": rid,
        "active": True,
        "patient": {"reference": f"Patient/{patient}"},
        "relationship": [{"coding": [{"system": ROLES, "code": code}]}],
        "telecom": list(telecom),
    }


def confidential_from(patient: str, *related_ids: str) -> dict[str, Any]:
    """The adolescent's confidential mode: a deny naming the representatives, some classes."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {
            "type": "deny",
            "actor": [{"reference": {"reference": f"RelatedPerson/{r}"}} for r in related_ids],
            "class": [{"code": "11488-4"}],
        },
    }


def told(found: list[Recipient]) -> list[tuple[str, str, str]]:
    return [(r.channel, r.address, r.role) for r in found]


def test_the_person_is_told_on_their_own_contact_points_as_they_chose() -> None:
    julie = person("julie", "1985-04-12", email("julie@example.fr"), mobile("06 12 34 56 78"))
    assert told(recipients(julie, kind="message", now_us=NOW)) == [
        ("email", "julie@example.fr", "self"),
        ("sms", "06 12 34 56 78", "self"),
    ]
    assert told(recipients(apply_choice(julie, "sms"), kind="threshold", now_us=NOW)) == [
        ("sms", "06 12 34 56 78", "self")
    ]
    assert recipients(apply_choice(julie, "none"), kind="care", now_us=NOW) == []
    # an ended contact point is not used
    old = {**email("ancienne@example.fr"), "period": {"end": "2020-01-01"}}
    assert told(recipients(person("x", "1990-01-01", old), kind="message", now_us=NOW)) == []


def test_nobody_is_told_when_there_is_no_contact_detail() -> None:
    assert recipients(person("paul", "1970-06-03"), kind="emergency", now_us=NOW) == []


def test_a_child_s_two_parents_are_told_on_their_own_contact_points() -> None:
    child = person("lea", "2019-09-21")  # seven, no contact details of her own
    mother = relative("mere", "lea", "MTH", email("camille@example.fr"), mobile("+33 6 11 22 33 44"))
    father = relative("pere", "lea", "FTH", email("thomas@example.fr", notify=False), mobile("0699887766"))
    aunt = relative("tante", "lea", "CAREGIVER", email("tante@example.fr"))  # an aidant: not told
    other = relative("autre", "someone-else", "MTH", email("autre@example.fr"))  # another child's
    found = recipients(child, [mother, father, aunt, other], kind="message", now_us=NOW)
    assert told(found) == [
        ("email", "camille@example.fr", "representative"),
        ("sms", "+33 6 11 22 33 44", "representative"),
        ("sms", "0699887766", "representative"),  # the father switched his e-mail off
    ]
    assert {r.related_id for r in found} == {"mere", "pere"}
    # a parent whose address is also the child's (written in her record) is told once
    shared = person("lea", "2019-09-21", email("Camille@example.fr"))
    assert told(recipients(shared, [mother], kind="message", now_us=NOW)) == [
        ("email", "Camille@example.fr", "self"),
        ("sms", "+33 6 11 22 33 44", "representative"),
    ]
    # an inactive or ended representation tells nobody
    gone = {**mother, "active": False}
    ended = {**father, "period": {"start": "2019-09-21", "end": "2024-01-01"}}
    assert recipients(child, [gone, ended], kind="message", now_us=NOW) == []


def test_an_adolescent_s_confidential_choice_keeps_confidential_events_from_the_parent_named() -> None:
    teen = person("ado", "2010-02-01", email("ado@example.fr"))  # sixteen
    mother = relative("mere", "ado", "MTH", email("mere@example.fr"))
    father = relative("pere", "ado", "FTH", email("pere@example.fr"))
    deny = confidential_from("ado", "mere")
    for kind in ("message", "care", "emergency"):
        assert told(recipients(teen, [mother, father], [deny], kind=kind, now_us=NOW)) == [  # type: ignore[arg-type]
            ("email", "ado@example.fr", "self"),
            ("email", "pere@example.fr", "representative"),
        ], kind
    # a threshold crossed concerns measures the space set and the mother sees: she is told
    assert [r.address for r in recipients(teen, [mother, father], [deny], kind="threshold", now_us=NOW)] == [
        "ado@example.fr",
        "mere@example.fr",
        "pere@example.fr",
    ]
    # a withdrawn or ended choice no longer keeps anything
    withdrawn = {**deny, "status": "inactive"}
    ended = {**deny, "provision": {**deny["provision"], "period": {"end": "2026-01-01"}}}
    for consent in (withdrawn, ended):
        assert len(recipients(teen, [mother, father], [consent], kind="message", now_us=NOW)) == 3
    # a message the professional hid from the legal representatives: told to no parent at all
    assert told(
        recipients(teen, [mother, father], [], kind="message", now_us=NOW, hidden_from_representatives=True)
    ) == [("email", "ado@example.fr", "self")]


def test_a_young_adult_is_told_alone_from_their_majority_on() -> None:
    adult = person("tom", "2008-05-12", email("tom@example.fr"))  # eighteen today
    mother = relative("mere", "tom", "MTH", email("mere@example.fr"))
    assert told(recipients(adult, [mother], kind="message", now_us=NOW)) == [
        ("email", "tom@example.fr", "self")
    ]
    the_day_before = NOW - 24 * 3600 * 1_000_000
    assert len(recipients(adult, [mother], kind="message", now_us=the_day_before)) == 2
    # HYGIE_MAJORITY_AGE moves it
    assert len(recipients(adult, [mother], kind="message", now_us=NOW, majority_age=21)) == 2
    assert majority_us({"birthDate": "2008-02-29"}, 18) == majority_us({"birthDate": "2026-03-01"}, 0)
    assert majority_us({}, 18) is None


def test_a_protected_adult_s_representative_follows_the_access_rules() -> None:
    """A protected adult (tutelle): the access rules (``domain/relations.py``) end every legal
    representative's relation at majority, so their guardian holds no space and is not told —
    the rule tells exactly those the access rules let run the space, never more. The person
    is told on their own contact points."""
    protected = person("marc", "1960-03-09", mobile("06 55 44 33 22"))
    guardian = relative("tuteur", "marc", "GUARD", email("tuteur@example.fr"))
    guardian["period"] = {"start": "2021-06-01"}
    assert told(recipients(protected, [guardian], kind="emergency", now_us=NOW)) == [
        ("sms", "06 55 44 33 22", "self")
    ]
    # without a birth date the relation has no majority to end at: the guardian runs the space
    unknown_age = {**protected, "birthDate": None}
    assert told(recipients(unknown_age, [guardian], kind="emergency", now_us=NOW)) == [
        ("sms", "06 55 44 33 22", "self"),
        ("email", "tuteur@example.fr", "representative"),
    ]


def test_each_event_has_one_text_with_no_health_detail_and_a_key_per_destination() -> None:
    to = [
        Recipient("email", "julie@example.fr", "self"),
        Recipient("sms", "+33 6 12 34 56 78", "self"),
        Recipient("email", "mere@example.fr", "representative", "mere"),
    ]
    made = notices("care", "enc-1", to, base_url="https://hygie.example/", until="12/08/2026")
    assert [n.to for n in made] == ["julie@example.fr", "+33 6 12 34 56 78", "mere@example.fr"]
    assert made[0].subject == "Un professionnel de santé déclare vous prendre en charge"
    assert "jusqu’au 12/08/2026" in made[0].body
    assert "https://hygie.example/ens/controles/historique" in made[0].body
    assert "un de vos proches" in made[2].body and "un de vos proches" in made[2].subject
    assert made[1].body.startswith("Hygie : ") and len(made[1].body) < 160
    assert len({n.dedup_key for n in made}) == 3
    # the same destination written another way is the same key; another event, another key
    again = notices("care", "enc-1", [Recipient("sms", "06 12 34 56 78", "self")], base_url=None)
    assert again[0].dedup_key == made[1].dedup_key
    assert notices("care", "enc-2", to[:1], base_url=None)[0].dedup_key != made[0].dedup_key
    for kind in ("message", "threshold", "care", "emergency"):
        for n in notices(kind, "k", to, base_url=None):  # type: ignore[arg-type]
            assert "http" not in n.body  # no address known: the page is named, not linked
            assert "Bonjour" in n.body or n.channel == "sms"
    message = notices("message", "m1", to[:1], base_url="https://hygie.example")[0]
    assert "nouveau message dans votre espace santé" in message.body
    assert "https://hygie.example/ens/messages" in message.body
