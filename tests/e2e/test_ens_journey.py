"""The issue's acceptance list, as two continuous stories in one browser session each.

1. A citizen signs in, completes the profile, uploads a document, sees a professional's document,
   masks it, reads the access history and disputes an entry, creates a QR grant, enters a weight
   series and sees the chart, requests a prescription renewal, subscribes to the iCalendar feed,
   writes to the GP, exports everything, and closes the space after the preview.
2. A legal representative runs a child's space; an adolescent's confidential document stays hidden
   from the parents (home page, documents list, its direct address, the export, the access history).

Each step is one function (its docstring names the step in French) that checks outcomes, not
clicks: what the professionals see through the FHIR API, what is stored (read as an operator),
what the files downloaded hold. Every page shown is checked with axe-core.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import icalendar
import orjson
import pytest
from ens_seed import (
    doctor_reads,
    gp_accepting_messages,
    pdf_bytes,
    physician,
    pro_headers,
    seed_professional_document,
    text_document,
)
from pypdf import PdfReader

from browser import assert_accessible, fill_sign_in, screenshots_dir
from conftest import Citizen, Family, LiveHygie, create_resource, new_citizen
from hygie.domain.access import Caller
from hygie.web.portal.door import Door

ATC = "https://smt.esante.gouv.fr/terminologie-atc"
OPERATOR = Caller.operator("tests/e2e journey")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshots_dir(tmp_path)


# --------------------------------------------------------------------------- helpers
def read(hygie: LiveHygie, resource_type: str, rid: str) -> dict[str, Any]:
    found = hygie.call(Door(hygie.runtime.service).read(OPERATOR, resource_type, rid))
    assert found is not None, f"{resource_type}/{rid}"
    return found


def search(hygie: LiveHygie, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return hygie.call(Door(hygie.runtime.service).search(OPERATOR, resource_type, params))


def labels_of(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for label in resource.get("securityLabel", []) for c in label.get("coding", [])}


def pro_get(hygie: LiveHygie, practitioner_id: str, path: str, **params: str) -> httpx.Response:
    """A professional's read through the FHIR API (their own token, as their software would)."""
    return httpx.get(
        f"{hygie.fhir}/{path}", params=params, headers=pro_headers(hygie, practitioner_id), timeout=30
    )


def show(page: Any, hygie: LiveHygie, path: str, what: str) -> None:
    """Open a page of the portal (it must be there: no redirect) and check it with axe-core."""
    response = page.goto(f"{hygie.base}{path}")
    assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
    assert page.url.split("#")[0] == f"{hygie.base}{path}", page.url
    assert_accessible(page, what)


def success(page: Any) -> str:
    page.wait_for_selector(".fr-alert--success")
    return str(page.locator(".fr-alert--success").first.inner_text())


# --------------------------------------------------------------------------- the citizen's story
@dataclass
class Story:
    """The citizen's browser, her record, and the professionals around her."""

    hygie: LiveHygie
    page: Any
    shots: Path
    citizen: Citizen
    gp: str  # her médecin traitant (accepts messages), author of a report and of a prescription
    cardiologist: str  # in her care team
    gp_document: str
    prescription: str
    appointment: str
    own_document: str = ""
    sharer: str = ""  # the professional who redeemed her share code
    weights: list[str] = field(default_factory=list)
    renewal: str = ""
    message: str = ""
    soon: date = field(default_factory=lambda: date.today() + timedelta(days=9))

    @property
    def patient_ref(self) -> str:
        return f"Patient/{self.citizen.patient_id}"


def seed_the_story(hygie: LiveHygie, page: Any, shots: Path) -> Story:
    """Préparer le dossier : médecin traitant, compte rendu, ordonnance, rendez-vous, un accès."""
    citizen = new_citizen(hygie, family="FONTAINE", given="Claire", birth_date="1981-06-15")
    gp = gp_accepting_messages(hygie, "LEROY", "Anne")
    cardiologist = physician(hygie, "COEUR", "Hugo")
    # her GP, declared with her (Patient.generalPractitioner), and a cardiologist in her care team
    patient = read(hygie, "Patient", citizen.patient_id)
    patient["generalPractitioner"] = [{"reference": f"Practitioner/{gp}"}]
    hygie.call(Door(hygie.runtime.service).update(OPERATOR, patient))
    hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "CareTeam",
                "status": "active",
                "name": "Suivi cardiologique",
                "subject": {"reference": f"Patient/{citizen.patient_id}"},
                "participant": [{"member": {"reference": f"Practitioner/{cardiologist}"}}],
            },
        )
    )
    gp_document = seed_professional_document(
        hygie, citizen.patient_id, "Consultation de suivi tensionnel", day="2026-02-03", author=gp
    )
    today = date.today()
    prescription = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "groupIdentifier": {"value": "ORD-JOURNEE-0001"},
                "medicationCodeableConcept": {
                    "coding": [{"system": ATC, "code": "C08CA01"}],
                    "text": "Amlodipine 5 mg, comprimé",
                },
                "subject": {"reference": f"Patient/{citizen.patient_id}"},
                "authoredOn": (today - timedelta(days=25)).isoformat(),
                "requester": {"reference": f"Practitioner/{gp}"},
                "dosageInstruction": [{"text": "1 comprimé le matin"}],
                "dispenseRequest": {
                    "validityPeriod": {
                        "start": (today - timedelta(days=25)).isoformat(),
                        "end": (today + timedelta(days=65)).isoformat(),
                    },
                    "numberOfRepeatsAllowed": 2,
                },
            },
        )
    )
    story = Story(hygie, page, shots, citizen, gp, cardiologist, gp_document, prescription, "")
    story.appointment = hygie.call(
        create_resource(
            hygie.runtime,
            {
                "resourceType": "Appointment",
                "status": "booked",
                "description": "Consultation de contrôle tensionnel",
                "start": f"{story.soon.isoformat()}T09:30:00+01:00",
                "end": f"{story.soon.isoformat()}T09:50:00+01:00",
                "participant": [
                    {"actor": {"reference": f"Practitioner/{gp}"}, "status": "accepted"},
                    {"actor": {"reference": story.patient_ref}, "status": "accepted"},
                ],
            },
        )
    )
    # a professional's access, so that the access history has an entry: the GP opens the record
    assert pro_get(hygie, gp, f"Patient/{citizen.patient_id}").status_code == 200
    return story


def se_connecter(s: Story) -> None:
    """Se connecter : la page de connexion, puis l'accueil de son espace."""
    page, hygie = s.page, s.hygie
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, s.citizen.login, s.citizen.password)
    page.wait_for_url(f"{hygie.base}/ens")
    assert page.locator("h1").inner_text().startswith("Bonjour Claire")
    assert "Consultation de suivi tensionnel" in page.locator("main").inner_text()
    assert_accessible(page, "home")


def completer_le_profil(s: Story) -> None:
    """Compléter son profil : coordonnées, personne de confiance, don d'organes."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/profil", "profile (before)")
    assert re.search(r"Médecin traitant : Dr Anne LEROY\d+", page.locator("main").inner_text())

    show(page, hygie, "/ens/profil/coordonnees", "contact details")
    page.fill("#telephone", "06 98 76 54 32")
    page.fill("#courriel", "claire.fontaine@example.fr")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(f"{hygie.base}/ens/profil")

    show(page, hygie, "/ens/profil/personne-de-confiance", "trusted person")
    page.fill("#nom", "Fontaine")
    page.fill("#prenom", "Marc")
    page.select_option("#lien", "FRND")
    page.fill("#telephone", "07 11 22 33 44")
    page.locator("label[for='acces-1']").click()  # "Non": no access to the record
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/ens/profil#proches$"))

    show(page, hygie, "/ens/profil/don-organes", "organ donation")
    page.locator("label[for='position-2']").click()
    page.locator("label[for='organe-cornees']").click()
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/ens/profil#don$"))

    show(page, hygie, "/ens/profil", "profile (completed)")
    main = page.locator("main").inner_text()
    assert "+33 6 98 76 54 32" in main and "claire.fontaine@example.fr" in main
    assert "Marc FONTAINE" in main and "Personne de confiance" in main
    assert "(cornées)" in main
    patient = read(hygie, "Patient", s.citizen.patient_id)
    telecom = {t["system"]: t["value"] for t in patient["telecom"]}
    assert telecom["email"] == "claire.fontaine@example.fr"
    assert telecom["phone"].replace(" ", "") in {"+33698765432", "0698765432"}
    related = search(hygie, "RelatedPerson", [("patient", s.citizen.patient_id)])
    assert [r["name"][0]["family"] for r in related] == ["FONTAINE"]


def deposer_un_document(s: Story) -> None:
    """Déposer un document : un PDF, rangé dans son dossier, à son nom."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/documents/ajouter", "upload form")
    page.fill("#titre", "Bilan sanguin de février")
    page.select_option("#type", "biologie")
    page.fill("#date", "2026-02-20")
    page.set_input_files(
        "#fichier", {"name": "bilan.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes("Bilan")}
    )
    page.get_by_role("button", name="Ajouter le document").click()
    page.wait_for_url(re.compile(r"/ens/documents/[0-9a-f\-]{36}$"))
    s.own_document = page.url.rsplit("/", 1)[1]
    assert "Le document a été ajouté à votre dossier." in page.locator("[role=status]").inner_text()
    assert page.locator("h1").inner_text() == "Bilan sanguin de février"
    assert_accessible(page, "own document")
    stored = read(hygie, "DocumentReference", s.own_document)
    assert stored["author"] == [{"reference": s.patient_ref}]
    binary = read(hygie, "Binary", stored["content"][0]["attachment"]["url"].split("/")[1])
    assert binary["contentType"] == "application/pdf"


def voir_et_masquer_le_document_du_medecin(s: Story) -> None:
    """Voir le document d'un professionnel, le télécharger, puis le masquer aux professionnels."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/documents", "documents list")
    table = page.locator("#table-documents")
    assert "Bilan sanguin de février" in table.inner_text()
    row = table.locator("tbody tr", has_text="Consultation de suivi tensionnel")
    assert re.search(r"Dr Anne LEROY\d+", row.inner_text())
    row.get_by_role("link", name="Consultation de suivi tensionnel").click()
    page.wait_for_url(f"{hygie.base}/ens/documents/{s.gp_document}")
    assert "vous ne pouvez ni le modifier ni le supprimer" in page.locator("main").inner_text()
    assert_accessible(page, "professional's document")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("^Télécharger")).click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")

    # before: the cardiologist of her care team reads it
    doc_path = f"DocumentReference/{s.gp_document}"
    assert pro_get(hygie, s.cardiologist, doc_path).status_code == 200
    page.get_by_role("button", name="Masquer ce document aux professionnels").click()
    page.wait_for_url(f"{hygie.base}/ens/documents/{s.gp_document}")
    assert "Le document est masqué" in page.locator("[role=status]").inner_text()
    assert page.locator("main .fr-badge", has_text="Masqué aux professionnels").count() == 1
    assert_accessible(page, "masked document")
    # after: the label is on the document; the cardiologist no longer reaches it (nor in a
    # search), her GP (its author and her médecin traitant) still does
    assert "MASQUE_PS" in labels_of(read(hygie, "DocumentReference", s.gp_document))
    assert pro_get(hygie, s.cardiologist, doc_path).status_code == 404
    found = pro_get(hygie, s.cardiologist, "DocumentReference", patient=s.citizen.patient_id).json()
    assert s.gp_document not in {e["resource"]["id"] for e in found.get("entry", [])}
    assert pro_get(hygie, s.gp, doc_path).status_code == 200


def contester_un_acces(s: Story) -> None:
    """Lire l'historique des accès et signaler un accès qu'on ne reconnaît pas."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/controles", "who sees my record")
    people = page.locator("#table-acces").inner_text()
    assert "Hugo COEUR" in people and re.search(r"Anne LEROY\d+", people)
    show(page, hygie, "/ens/controles/historique", "access history")
    rows = page.locator("#table-historique tbody tr")
    history = page.locator("#table-historique").inner_text()
    assert "Hugo COEUR" in history  # his reads of the document, before it was masked
    gp_read = rows.filter(has_text=re.compile(r"Anne LEROY\d+")).filter(has_text="votre identité")
    assert gp_read.count() == 1
    assert "Pour vos soins" in gp_read.inner_text()
    gp_read.get_by_role("link").click()
    page.wait_for_selector("#detail-acces")
    entry = page.url.rsplit("/", 1)[1]
    assert_accessible(page, "one access")
    page.locator("label[for=motif-inconnu]").click()
    page.fill("#precisions", "Je n'étais pas en consultation ce jour-là.")
    page.get_by_role("button", name="Signaler cet accès").click()
    page.wait_for_selector("#etat-signalement")
    assert "Signalement envoyé" in page.locator("#etat-signalement").inner_text()
    assert_accessible(page, "disputed access")
    [dispute] = hygie.call(hygie.runtime.audit.list_disputes(patient=s.citizen.patient_id))
    assert dispute.status == "open" and "pas en consultation" in dispute.comment
    show(page, hygie, "/ens/controles/historique", "access history (with a dispute)")
    disputed = page.locator(f"#table-historique tbody tr:has(a[href$='/historique/{entry}'])")
    assert "signalement envoyé" in disputed.inner_text().lower()


def creer_un_partage_par_qr_code(s: Story) -> None:
    """Créer un partage : le code à 8 caractères et son QR code, qu'un professionnel utilise."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/controles/partage", "share form")
    page.select_option("#duree", "7")
    page.locator("label[for=classe-10]").click()
    page.get_by_role("button", name="Créer le code de partage").click()
    page.wait_for_url(f"{hygie.base}/ens/controles/partage/code")
    code = page.locator("#code-partage").inner_text().replace(" ", "")
    assert len(code) == 8 and code.isalnum()
    qr = page.locator("#qr-partage")
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    assert code[:4] in (qr.get_attribute("alt") or "")
    page.wait_for_function("document.getElementById('qr-partage').naturalWidth > 0")  # drawn
    assert_accessible(page, "share code")
    page.screenshot(path=str(s.shots / "ens-journey-partage.png"), full_page=True)

    # a professional with no relation to her redeems the code, then opens the record
    s.sharer = physician(hygie, "PASSANT", "Luc")
    assert pro_get(hygie, s.sharer, f"Patient/{s.citizen.patient_id}").status_code == 404
    redeemed = httpx.post(
        f"{hygie.fhir}/$redeem-share",
        json={"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]},
        headers=pro_headers(hygie, s.sharer),
    )
    assert redeemed.status_code == 201, redeemed.text
    assert pro_get(hygie, s.sharer, f"Patient/{s.citizen.patient_id}").status_code == 200
    show(page, hygie, "/ens/controles", "who sees my record (with a share)")
    grant = page.locator("#table-acces tr", has_text="Luc PASSANT")
    assert "Partage temporaire" in grant.inner_text()


def saisir_une_serie_de_poids(s: Story) -> None:
    """Saisir une série de poids et voir la courbe et le tableau."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/mesures/poids", "weight (empty)")
    today = date.today()
    for value, days in (("68,4", 45), ("67,9", 21), ("67,2", 3)):
        page.fill("#valeur", value)
        page.fill("#date", (today - timedelta(days=days)).isoformat())
        page.fill("#heure", "07:45")
        page.get_by_role("button", name="Enregistrer la valeur").click()
        success(page)
    table = page.locator("#tableau-valeurs").inner_text()
    for shown in ("68,4 kg", "67,9 kg", "67,2 kg"):
        assert shown in table
    assert page.locator("#tableau-valeurs tbody tr").count() == 3
    chart = page.locator("img.ens-chart")
    assert "3 mesures" in (chart.get_attribute("alt") or "")
    page.wait_for_function("document.querySelector('img.ens-chart').naturalWidth > 0")
    src = chart.get_attribute("src") or ""
    svg = page.request.get(f"{hygie.base}{src}" if src.startswith("/") else src)
    assert svg.status == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text()
    assert_accessible(page, "weight series")
    observations = search(
        hygie, "Observation", [("patient", s.citizen.patient_id), ("code", "http://loinc.org|29463-7")]
    )
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [67.2, 67.9, 68.4]
    assert all(o["performer"][0]["reference"] == s.patient_ref for o in observations)
    s.weights = [o["id"] for o in observations]


def demander_un_renouvellement(s: Story) -> None:
    """Demander le renouvellement d'une ordonnance : une tâche arrive chez la prescriptrice."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/ordonnances", "prescriptions")
    card = page.locator(".fr-card", has_text="Amlodipine 5 mg, comprimé")
    assert re.search(r"Dr Anne LEROY\d+", card.inner_text())
    card.locator("a").click()
    page.wait_for_url(f"{hygie.base}/ens/ordonnances/{s.prescription}")
    assert_accessible(page, "prescription")
    page.fill("#message", "Il me reste dix jours de traitement.")
    page.get_by_role("button", name="Demander un renouvellement").click()
    assert re.search(r"envoyée à Dr Anne LEROY\d+", success(page))
    assert "en attente de réponse" in page.locator(".fr-callout").inner_text()
    assert_accessible(page, "prescription (renewal asked)")
    # the GP's inbox, through the API: the Task she owns, for this prescription
    inbox = pro_get(hygie, s.gp, "Task", owner=f"Practitioner/{s.gp}", status="requested")
    assert inbox.status_code == 200, inbox.text
    [task] = [e["resource"] for e in inbox.json().get("entry", [])]
    assert task["focus"]["reference"] == f"MedicationRequest/{s.prescription}"
    assert task["for"]["reference"] == s.patient_ref
    assert task["requester"]["reference"] == s.patient_ref
    assert task["note"][0]["text"] == "Il me reste dix jours de traitement."
    s.renewal = task["id"]


def s_abonner_a_l_agenda(s: Story) -> None:
    """S'abonner à son agenda : le flux iCalendar se lit avec icalendar et contient le rendez-vous."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/agenda", "agenda")
    assert "Consultation de contrôle tensionnel" in page.locator("#a-venir").inner_text()
    page.get_by_role("button", name="Créer mon adresse d’abonnement").click()
    page.wait_for_selector("#flux")
    url = page.input_value("#flux")
    assert url.startswith(f"{hygie.base}/ens/agenda/flux/") and url.endswith(".ics")
    assert_accessible(page, "agenda (feed address)")
    fetched = httpx.get(url, timeout=30)  # a calendar app: no session, no cookie
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(fetched.content)
    events = {str(e.get("summary")): e for e in calendar.walk("VEVENT")}
    assert "Consultation de contrôle tensionnel" in events, list(events)
    start = events["Consultation de contrôle tensionnel"].decoded("dtstart")
    assert isinstance(start, datetime) and start.date() == s.soon


def ecrire_au_medecin_traitant(s: Story) -> None:
    """Écrire à son médecin traitant, qui lit le message par l'API."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/messages/nouveau", "new message")
    options = page.locator("#destinataire option").all_inner_texts()
    assert any("LEROY" in o and "médecin traitant" in o for o in options), options
    page.locator("#destinataire").select_option(f"Practitioner/{s.gp}")
    page.fill("#objet", "Mon traitement")
    page.fill("#message", "Bonjour Docteur,\nma tension est stable depuis un mois.\nCordialement")
    page.get_by_role("button", name="Envoyer le message").click()
    page.wait_for_url(lambda url: "/ens/messages/" in url and "nouveau" not in url)
    s.message = page.url.rsplit("/", 1)[1]
    assert "Votre message a été envoyé" in page.locator("main").inner_text()
    assert_accessible(page, "conversation")
    found = pro_get(hygie, s.gp, "Communication", patient=s.patient_ref)
    assert found.status_code == 200, found.text
    [sent] = [e["resource"] for e in found.json().get("entry", [])]
    assert sent["id"] == s.message
    assert sent["sender"]["reference"] == s.patient_ref
    assert sent["recipient"][0]["reference"] == f"Practitioner/{s.gp}"
    assert "ma tension est stable" in sent["payload"][0]["contentString"]


def tout_exporter(s: Story) -> None:
    """Tout exporter : le dossier complet (Bundle FHIR) et une synthèse PDF."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/export", "export")
    with page.expect_download() as download:
        page.locator("#telecharger-fhir").click()
    bundle = orjson.loads(Path(download.value.path()).read_bytes())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    expected = {
        ("Patient", s.citizen.patient_id),
        ("DocumentReference", s.own_document),
        ("DocumentReference", s.gp_document),
        ("MedicationRequest", s.prescription),
        ("Task", s.renewal),
        ("Appointment", s.appointment),
        ("Communication", s.message),
        *(("Observation", w) for w in s.weights),
    }
    assert expected <= found, expected - found
    subjects = {
        (e["resource"].get("subject") or e["resource"].get("patient") or {}).get("reference")
        for e in bundle["entry"]
    }
    assert subjects <= {None, s.patient_ref}  # nothing of anyone else
    own = read(hygie, "DocumentReference", s.own_document)
    assert ("Binary", own["content"][0]["attachment"]["url"].split("/")[1]) in found

    with page.expect_download() as download:
        page.locator("#telecharger-pdf").click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Claire FONTAINE" in text and "Amlodipine" in text


def fermer_l_espace(s: Story) -> None:
    """Fermer son espace après l'aperçu : les professionnels n'y ont plus accès, le portail ne
    montre plus que « Mon espace »."""
    page, hygie = s.page, s.hygie
    show(page, hygie, "/ens/mon-espace", "my space (open)")
    assert "est ouvert" in page.locator("#etat-espace").inner_text()
    page.get_by_role("link", name="Refuser l’espace").click()  # she is within the opt-out window
    page.wait_for_url(f"{hygie.base}/ens/mon-espace/fermer")
    archived = page.locator("#archive").inner_text()
    deleted = page.locator("#suppression").inner_text()
    assert "Documents : 2" in archived and "Prescriptions : 1" in archived
    assert "Mesures que vous avez saisies : 3" in deleted
    assert page.get_by_role("link", name="Exporter mon dossier").count() == 1
    assert_accessible(page, "closing preview")
    page.locator("label[for=confirmation]").click()
    page.locator("#confirmer-fermeture").click()
    page.wait_for_url(f"{hygie.base}/ens/mon-espace")
    assert "a été refusé" in page.locator("#etat-espace").inner_text()
    assert_accessible(page, "my space (closed)")

    # every professional is refused now: her GP, the cardiologist, the one she shared with
    for practitioner in (s.gp, s.cardiologist, s.sharer):
        assert pro_get(hygie, practitioner, f"Patient/{s.citizen.patient_id}").status_code == 404
    assert pro_get(hygie, s.gp, f"DocumentReference/{s.gp_document}").status_code == 404
    # her own measures are gone; the professionals' entries are archived
    assert search(hygie, "Observation", [("patient", s.citizen.patient_id)]) == []
    assert read(hygie, "MedicationRequest", s.prescription)["id"] == s.prescription
    # the portal shows only "Mon espace": every other page leads there
    for path in (
        "/ens",
        "/ens/documents",
        f"/ens/documents/{s.own_document}",
        "/ens/controles",
        "/ens/export",
    ):
        page.goto(f"{hygie.base}{path}")
        page.wait_for_url(f"{hygie.base}/ens/mon-espace")
        assert page.locator("h1").inner_text() == "Mon espace", path
    assert page.get_by_role("button", name="Rouvrir l’espace").count() == 1
    menu = page.locator("#navigation-ens a")
    assert menu.all_inner_texts() == ["Mon espace"]
    assert menu.get_attribute("href") == "/ens/mon-espace"
    assert_accessible(page, "my space (closed, after a barred page)")
    page.screenshot(path=str(s.shots / "ens-journey-ferme.png"), full_page=True)


def test_a_citizen_s_whole_journey(page: Any, hygie: LiveHygie, shots: Path) -> None:
    story = seed_the_story(hygie, page, shots)
    se_connecter(story)
    completer_le_profil(story)
    deposer_un_document(story)
    voir_et_masquer_le_document_du_medecin(story)
    contester_un_acces(story)
    creer_un_partage_par_qr_code(story)
    saisir_une_serie_de_poids(story)
    demander_un_renouvellement(story)
    s_abonner_a_l_agenda(story)
    ecrire_au_medecin_traitant(story)
    tout_exporter(story)
    fermer_l_espace(story)


# --------------------------------------------------------------------------- a minor's space
CONFIDENTIAL = "Consultation confidentielle"


def ouvrir_l_espace_de_l_enfant(page: Any, hygie: LiveHygie, parent: Citizen, child_id: str) -> None:
    """Un parent se connecte et choisit l'espace de son enfant."""
    page.goto(f"{hygie.base}/ens")
    fill_sign_in(page, parent.login, parent.password)
    page.wait_for_url(f"{hygie.base}/ens")
    page.select_option("#espace", child_id)
    page.get_by_role("button", name="Changer d’espace").click()
    page.wait_for_url(f"{hygie.base}/ens")
    notice = page.locator("main").inner_text()
    assert "Vous agissez pour Léa BERNARD, en tant que représentant légal" in notice


def history_rows(page: Any, hygie: LiveHygie, who: str) -> list[tuple[str, str]]:
    """Every line of the access history (all its pages): its text and its detail's address."""
    rows: list[tuple[str, str]] = []
    path: str | None = f"/ens/controles/historique?qui={who}"
    while path is not None:
        show(page, hygie, path, f"access history ({who})")
        rows.extend(
            (row.inner_text(), row.locator("a").get_attribute("href") or "")
            for row in page.locator("#table-historique tbody tr").all()
        )
        older = page.locator("a.fr-pagination__link--next")
        path = older.get_attribute("href") if older.count() else None
    return rows


def le_document_confidentiel_reste_cache(
    page: Any, hygie: LiveHygie, family: Family, shared: str, secret: str
) -> None:
    """Le document confidentiel de l'adolescente reste caché : accueil, liste, adresse directe,
    export, historique des accès."""
    child = family.child.patient_id
    home = page.locator("main").inner_text()
    assert "Carnet de vaccination" in home and CONFIDENTIAL not in home
    assert_accessible(page, "child's home")

    show(page, hygie, "/ens/documents", "child's documents")
    documents = page.locator("main").inner_text()
    assert "Carnet de vaccination" in documents and CONFIDENTIAL not in documents

    response = page.goto(f"{hygie.base}/ens/documents/{secret}")
    assert response is not None and response.status == 404
    assert CONFIDENTIAL not in page.content()
    assert_accessible(page, "confidential document refused")
    content = page.request.get(f"{hygie.base}/ens/documents/{secret}/fichier")
    assert content.status == 404

    show(page, hygie, "/ens/export", "child's export")
    with page.expect_download() as download:
        page.locator("#telecharger-fhir").click()
    raw = Path(download.value.path()).read_bytes()
    ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in orjson.loads(raw)["entry"]}
    assert ("DocumentReference", shared) in ids and ("Patient", child) in ids
    assert ("DocumentReference", secret) not in ids
    assert CONFIDENTIAL.encode() not in raw
    with page.expect_download() as download:
        page.locator("#telecharger-pdf").click()
    pdf = Path(download.value.path()).read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Léa BERNARD" in text and "Carnet de vaccination" in text and CONFIDENTIAL not in text

    for who in ("autres", "tous"):
        rows = history_rows(page, hygie, who)
        assert all(CONFIDENTIAL not in text for text, _ in rows)
        reads = [t for t, _ in rows if "Inès PEDIATRE" in t and "a consulté un document" in t]
        assert len(reads) == 1  # the shared document's read; the confidential one's is not shown
        for _, href in rows:
            detail = page.request.get(f"{hygie.base}{href}")
            assert detail.ok and CONFIDENTIAL not in detail.text() and secret not in detail.text()


def test_legal_representatives_run_a_child_s_space_without_her_confidential_document(
    page: Any, hygie: LiveHygie, family: Family
) -> None:
    child = family.child.patient_id
    shared = text_document(hygie, child, "Carnet de vaccination")
    secret = text_document(hygie, child, CONFIDENTIAL, labels=("INVISIBLE_REPRESENTANTS_LEGAUX",))
    doctor_reads(hygie, child, shared, secret)

    for n, parent in enumerate(family.parents):
        ouvrir_l_espace_de_l_enfant(page, hygie, parent, child)
        le_document_confidentiel_reste_cache(page, hygie, family, shared, secret)
        # the parent runs the space: a weight for the child, entered in the parent's name
        show(page, hygie, "/ens/mesures/poids", "child's weight")
        page.fill("#valeur", f"4{n + 4},5")
        page.fill("#date", (date.today() - timedelta(days=n + 1)).isoformat())
        page.fill("#heure", "19:00")
        page.get_by_role("button", name="Enregistrer la valeur").click()
        success(page)
        assert page.locator("#tableau-valeurs tbody tr").count() == n + 1
        assert_accessible(page, "child's weight (entered)")
        page.get_by_role("button", name="Se déconnecter").click()
        page.wait_for_load_state()

    weights = search(hygie, "Observation", [("patient", child), ("code", "http://loinc.org|29463-7")])
    assert sorted(w["performer"][0]["reference"] for w in weights) == sorted(
        f"RelatedPerson/{r}" for r in family.related_ids
    )
    # the adolescent herself sees her confidential document, and who entered her weights
    page.goto(f"{hygie.base}/ens/documents")
    fill_sign_in(page, family.child.login, family.child.password)
    page.wait_for_url(f"{hygie.base}/ens/documents")
    assert CONFIDENTIAL in page.locator("main").inner_text()
    assert_accessible(page, "the adolescent's documents")
    show(page, hygie, f"/ens/documents/{secret}", "the adolescent's confidential document")
    show(page, hygie, "/ens/mesures/poids", "the adolescent's weights")
    table = page.locator("#tableau-valeurs").inner_text()
    assert "Sophie BERNARD" in table and "Marc BERNARD" in table
    # and both of the doctor's reads in her access history: hidden from her parents, not missing
    rows = history_rows(page, hygie, "autres")
    reads = [t for t, _ in rows if "Inès PEDIATRE" in t and "a consulté un document" in t]
    assert len(reads) == 2
