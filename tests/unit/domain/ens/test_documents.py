"""The documents' rules without a server: files trusted by their bytes, the form's French
errors, filters and pages, the transaction Bundles, the safe rendering of structured contents."""

from __future__ import annotations

import base64
import io
from datetime import date
from typing import Any

import orjson
import pytest

from hygie.domain.ens import documents as rules
from hygie.domain.ens.document_view import render

TODAY = date(2026, 3, 15)
MAX = 200_000


def pdf(text: str = "Bonjour") -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(0, 10, text)
    return bytes(document.output())


def image(kind: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, kind)
    return buffer.getvalue()


# -- files ------------------------------------------------------------------------------------------


def test_a_file_is_known_by_its_bytes_not_by_its_name() -> None:
    assert rules.check_file(pdf()).content_type == "application/pdf"
    assert rules.check_file(image("PNG")).content_type == "image/png"
    assert rules.check_file(image("JPEG")).content_type == "image/jpeg"
    for data in (b"<html><script>alert(1)</script></html>", b"GIF89a" + b"\0" * 40, b"PK\x03\x04zip"):
        with pytest.raises(rules.FileRefused, match="type de fichier"):
            rules.check_file(data)
    with pytest.raises(rules.FileRefused, match="vide"):
        rules.check_file(b"")


@pytest.mark.parametrize(
    "damaged",
    [
        pytest.param(pdf()[:400], id="truncated-pdf"),
        pytest.param(b"%PDF-1.7\n" + bytes(range(256)) * 4, id="pdf-header-only"),
        pytest.param(image("PNG")[:60], id="truncated-png"),
        pytest.param(image("JPEG")[:150], id="truncated-jpeg"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, id="png-garbage"),
    ],
)
def test_a_damaged_file_is_refused(damaged: bytes) -> None:
    with pytest.raises(rules.FileRefused, match="endommagé"):
        rules.check_file(damaged)


def test_a_password_protected_pdf_is_refused() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf())))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(rules.FileRefused, match="mot de passe"):
        rules.check_file(out.getvalue())


# -- the form ---------------------------------------------------------------------------------------


def form(**changes: str) -> dict[str, str]:
    return {"titre": "Prise de sang", "type": "biologie", "date": "2026-03-02", **changes}


def test_a_complete_form_gives_a_draft() -> None:
    draft, errors = rules.validate_upload(
        form(titre="  Prise   de sang "), pdf(), too_large=False, max_bytes=MAX, today=TODAY
    )
    assert errors == {} and draft is not None
    assert draft.title == "Prise de sang" and draft.kind.loinc == "11502-2" and draft.day == date(2026, 3, 2)


@pytest.mark.parametrize(
    ("values", "data", "too_large", "field", "words"),
    [
        ({"titre": ""}, pdf(), False, "titre", "Donnez un titre"),
        ({"titre": "x" * 201}, pdf(), False, "titre", "trop long"),
        ({"type": "inconnu"}, pdf(), False, "type", "Choisissez le type"),
        ({"date": ""}, pdf(), False, "date", "Indiquez la date"),
        ({"date": "02/03/2026"}, pdf(), False, "date", "jj/mm/aaaa"),
        ({"date": "2026-02-30"}, pdf(), False, "date", "jj/mm/aaaa"),
        ({"date": "2026-03-16"}, pdf(), False, "date", "dans le futur"),
        ({"date": "1850-01-01"}, pdf(), False, "date", "trop ancienne"),
        ({}, None, False, "fichier", "Choisissez le fichier"),
        ({}, None, True, "fichier", "trop volumineux"),
        ({}, b"%PDF-" + b"x" * MAX, False, "fichier", "trop volumineux"),
        ({}, b"texte", False, "fichier", "type de fichier"),
    ],
)
def test_each_wrong_field_gets_its_sentence(
    values: dict[str, str], data: bytes | None, too_large: bool, field: str, words: str
) -> None:
    draft, errors = rules.validate_upload(
        form(**values), data, too_large=too_large, max_bytes=MAX, today=TODAY
    )
    assert draft is None
    assert list(errors) == [field] and words in errors[field]


def test_the_size_limit_is_said_in_plain_words() -> None:
    _, errors = rules.validate_upload(form(), None, too_large=True, max_bytes=10 * 1024 * 1024, today=TODAY)
    assert errors["fichier"] == "Le fichier est trop volumineux : 10,0 Mo au plus."


# -- transactions -----------------------------------------------------------------------------------


def draft() -> rules.UploadDraft:
    made, _ = rules.validate_upload(form(), pdf(), too_large=False, max_bytes=MAX, today=TODAY)
    assert made is not None
    return made


def test_an_upload_is_one_transaction_of_a_binary_and_its_document() -> None:
    bundle = rules.upload_bundle(
        draft(),
        patient_ref="Patient/p1",
        author_ref="RelatedPerson/mum",
        now_instant="2026-03-15T10:00:00+01:00",
    )
    assert bundle["type"] == "transaction"
    binary, document = (e["resource"] for e in bundle["entry"])
    assert binary["resourceType"] == "Binary" and binary["securityContext"] == {"reference": "Patient/p1"}
    assert base64.b64decode(binary["data"]).startswith(b"%PDF-")
    attachment = document["content"][0]["attachment"]
    assert attachment["url"] == bundle["entry"][0]["fullUrl"]
    assert attachment["contentType"] == "application/pdf" and attachment["creation"] == "2026-03-02"
    assert document["author"] == [{"reference": "RelatedPerson/mum"}]
    assert document["subject"] == {"reference": "Patient/p1"}
    assert document["category"][0]["coding"][0]["code"] == "90"
    assert {c["code"] for c in document["type"]["coding"]} == {"11502-2", "DOCPAT05"}
    assert "relatesTo" not in document


def test_a_new_version_replaces_the_former_one_in_the_same_transaction() -> None:
    former: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": "old",
        "meta": {"versionId": "3"},
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "securityLabel": [{"coding": [{"code": "MASQUE_PS"}]}],
    }
    bundle = rules.upload_bundle(
        draft(),
        patient_ref="Patient/p1",
        author_ref="Patient/p1",
        now_instant="2026-03-15T10:00:00+01:00",
        replaces=former,
    )
    methods = [(e["request"]["method"], e["request"]["url"]) for e in bundle["entry"]]
    assert methods == [("POST", "Binary"), ("PUT", "DocumentReference/old"), ("POST", "DocumentReference")]
    superseded = bundle["entry"][1]
    assert superseded["resource"]["status"] == "superseded" and "meta" not in superseded["resource"]
    assert superseded["request"]["ifMatch"] == 'W/"3"'
    new = bundle["entry"][2]["resource"]
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": "DocumentReference/old"}}]
    assert new["securityLabel"] == former["securityLabel"]  # a masked document stays masked…
    assert bundle["entry"][0]["resource"]["meta"]["security"][0]["code"] == "MASQUE_PS"  # …and its content


def test_a_deletion_is_one_transaction() -> None:
    bundle = rules.deletion_bundle([{"id": "a"}, {"id": "b"}])
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "DELETE", "url": "DocumentReference/a"},
        {"method": "DELETE", "url": "DocumentReference/b"},
    ]


# -- the list ---------------------------------------------------------------------------------------


def reference(
    rid: str, *, author: str, day: str, title: str, klass: str = "10", masked: bool = False
) -> dict[str, Any]:
    labels = [{"coding": [{"code": "MASQUE_PS"}]}] if masked else []
    return {
        "resourceType": "DocumentReference",
        "id": rid,
        "status": "current",
        "category": [{"coding": [{"system": rules.TRE_A03_CLASS, "code": klass}]}],
        "date": f"{day}T10:00:00Z",
        "author": [{"reference": author}],
        "description": title,
        "securityLabel": labels,
        "content": [{"attachment": {"contentType": "application/pdf", "size": 2048}}],
    }


def lines() -> list[rules.DocumentLine]:
    names = {"Practitioner/gp": "Dr Paul BERNARD"}
    found = [
        reference(
            "1", author="Practitioner/gp", day="2025-01-10", title="Échographie abdominale", klass="31"
        ),
        reference("2", author="Patient/p1", day="2025-03-02", title="Prise de sang", klass="90"),
        reference(
            "3", author="Practitioner/gp", day="2025-03-20", title="Ordonnance", klass="42", masked=True
        ),
        reference(
            "4", author="RelatedPerson/mum", day="2024-11-05", title="Carnet de vaccination", klass="90"
        ),
    ]
    return [rules.summarize(d, patient_ref="Patient/p1", actor_ref="Patient/p1", names=names) for d in found]


def test_a_line_says_who_wrote_it_and_whether_it_is_masked() -> None:
    echo, blood, prescription, vaccines = lines()
    assert echo.author_label == "Dr Paul BERNARD" and not echo.own and not echo.mine
    assert blood.author_label == "Vous" and blood.own and blood.mine
    assert vaccines.own and not vaccines.mine  # a relative added it: theirs to change
    assert prescription.masked and not echo.masked
    assert echo.class_label == "Imagerie médicale" and echo.date_label == "10 janvier 2025"
    assert rules.fr_size(echo.size) == "2 ko"


def test_a_document_an_app_sent_names_the_app() -> None:
    sent = reference("5", author="Patient/p1", day="2025-04-01", title="Relevé", klass="90")
    sent["meta"] = {"source": "urn:hygie:app:balance"}
    names = {"urn:hygie:app:balance": "Balance connectée"}
    line = rules.summarize(sent, patient_ref="Patient/p1", actor_ref="Patient/p1", names=names)
    assert line.author_label == "Vous (application « Balance connectée »)" and line.own
    del sent["author"]
    line = rules.summarize(sent, patient_ref="Patient/p1", actor_ref="Patient/p1", names=names)
    assert line.author_label == "Application « Balance connectée »"
    line = rules.summarize(sent, patient_ref="Patient/p1", actor_ref="Patient/p1", names={})
    assert line.author_label == "Une application"


def test_filters_by_class_period_source_and_words() -> None:
    every = lines()

    def kept(**query: str) -> list[str]:
        return [d.id for d in rules.sort_lines(every) if rules.Filters.parse(query).keeps(d)]

    assert kept() == ["3", "2", "1", "4"]  # newest first
    assert kept(categorie="90") == ["2", "4"]
    assert kept(du="2025-03-01", au="2025-03-31") == ["3", "2"]
    assert kept(source="moi") == ["2", "4"]
    assert kept(source="professionnels") == ["3", "1"]
    assert kept(q="ECHOGRAPHIE") == ["1"]  # no accent, any case
    assert kept(q="prise sang") == ["2"]
    assert kept(categorie="inconnue") == kept()  # an unknown value is no filter


def test_wrong_dates_in_filters_are_said_and_ignored() -> None:
    wrong = rules.Filters.parse({"du": "2025-13-01", "au": "pas une date"})
    assert wrong.start is None and wrong.end is None and set(wrong.errors) == {"du", "au"}
    backwards = rules.Filters.parse({"du": "2025-05-01", "au": "2025-01-01"})
    assert "après la date de début" in backwards.errors["au"]
    assert backwards.typed["au"] == "2025-01-01"


def test_pages_and_their_links() -> None:
    every = lines() * 12  # 48 lines
    page = rules.page_of(every, 3, size=20)
    assert (page.number, page.count, page.total, len(page.items)) == (3, 3, 48, 8)
    assert rules.page_of(every, 99, size=20).number == 3
    assert rules.page_of([], 1).count == 1
    filters = rules.Filters.parse({"categorie": "90", "q": "prise de sang", "page": "2"})
    assert filters.query(page=1) == "categorie=90&q=prise+de+sang"
    assert filters.query(page=3) == "categorie=90&q=prise+de+sang&page=3"


# -- structured contents ----------------------------------------------------------------------------

HOSTILE_DIV = (
    '<div xmlns="http://www.w3.org/1999/xhtml"><h2>Conclusion</h2>'
    '<p onclick="steal()">Tension <b>normale</b> &lt;script&gt;</p>'
    '<script>alert(1)</script><img src="x" onerror="alert(2)"/>'
    '<a href="javascript:alert(3)">lien</a><table><tr><th>Mesure</th><td>12</td></tr></table></div>'
)


def test_a_fhir_document_is_rendered_section_by_section_without_foreign_markup() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {
                "resource": {
                    "resourceType": "Composition",
                    "title": "Lettre de liaison",
                    "section": [
                        {
                            "title": "Synthèse <i>",
                            "text": {"status": "generated", "div": HOSTILE_DIV},
                            "section": [
                                {
                                    "title": "Détail",
                                    "text": {"div": '<div xmlns="http://www.w3.org/1999/xhtml">ok</div>'},
                                }
                            ],
                        }
                    ],
                }
            }
        ],
    }
    rendered = render(orjson.dumps(bundle), "application/fhir+json")
    assert rendered is not None and rendered.kind == "fhir" and rendered.title == "Lettre de liaison"
    first, nested = rendered.sections
    assert first.title == "Synthèse <i>"  # a title is text: the template escapes it
    assert "<strong>normale</strong>" in first.html
    assert "&lt;script&gt;" in first.html  # text that looks like markup stays text
    for forbidden in ("<script", "onclick", "onerror", "<img", "javascript:", "href", "alert(1)"):
        assert forbidden not in first.html
    assert "<p><strong>Conclusion</strong></p>" in first.html
    assert "<th>Mesure</th>" in first.html and "lien" in first.html
    assert (nested.title, nested.level, nested.html) == ("Détail", 1, "ok")


def test_a_cda_document_is_rendered_and_its_xml_cannot_reach_outside() -> None:
    cda = b"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Compte rendu d'hospitalisation</title>
<component><structuredBody><component><section><title>Motif</title>
<text><paragraph>Douleur <content styleCode="Bold">thoracique</content></paragraph>
<list listType="ordered"><item>ECG</item><item>Troponine</item></list></text>
<component><section><title>Examens</title><text>RAS</text></section></component>
</section></component></structuredBody></component></ClinicalDocument>"""
    rendered = render(cda, "text/xml")
    assert rendered is not None and rendered.title == "Compte rendu d'hospitalisation"
    assert [(s.title, s.level) for s in rendered.sections] == [("Motif", 0), ("Examens", 1)]
    assert rendered.sections[0].html == (
        "<p>Douleur <span>thoracique</span></p>\n<ol><li>ECG</li><li>Troponine</li></ol>"
    )
    entity = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>"""
    assert render(entity, "text/xml") is None  # no DTD, no entity: not rendered, offered for download


def test_plain_text_is_escaped_and_other_contents_are_not_rendered() -> None:
    rendered = render(b"Ligne 1\n<b>Ligne 2</b>\n\nParagraphe", "text/plain; charset=utf-8")
    assert rendered is not None
    assert rendered.sections[0].html == "<p>Ligne 1<br>&lt;b&gt;Ligne 2&lt;/b&gt;</p><p>Paragraphe</p>"
    assert render(pdf(), "application/pdf") is None
    assert render(b'{"resourceType": "Patient"}', "application/fhir+json") is None
    assert render(b"{not json", "application/json") is None
