"""The printed prescription: one A4 PDF (fpdf2) with the number in clear and its QR code (segno).

What it shows, top to bottom: the prescriber (name, profession, RPPS and IdNat_PS, structure,
address, telephone), the date and place, the patient (name, birth date, INS when known), the
lines in plain French (medicine, posology, packs of one delivery, *à renouveler N fois*,
*non substituable*), the validity, then the QR code beside the prescription number and a word
to the patient on what the code opens. The PDF's creation date is the prescription's, so the same
prescription always gives the same bytes.

fpdf2's core Helvetica covers Latin-1 only: text goes through :func:`~hygie.domain.french.to_latin1`.
The QR code is embedded as a PNG image (a pharmacy's scanner, or a test, reads it back).
"""

from __future__ import annotations

import io
import textwrap
from datetime import date, datetime

import segno
from fpdf import FPDF

from hygie.domain.eprescription.numbers import display_number
from hygie.domain.eprescription.records import Issuer, PatientBanner
from hygie.domain.eprescription.rules import Prescription
from hygie.domain.french import FRENCH_MONTHS, to_latin1

__all__ = ["qr_png", "render_prescription"]

_WRAP = 90


def _long_date(day: date) -> str:
    return f"{day.day} {FRENCH_MONTHS[day.month - 1]} {day.year}"


def qr_png(text: str, *, scale: int = 6) -> bytes:
    """The QR code of ``text`` as PNG bytes (error correction M, quiet zone of 4 modules)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def render_prescription(
    prescription: Prescription,
    *,
    number: str,
    qr_payload: str,
    issuer: Issuer,
    patient: PatientBanner,
    created: datetime,
) -> bytes:
    """The PDF bytes of the prescription (starting with ``%PDF``)."""
    printed = display_number(number)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(created)
    pdf.set_title(to_latin1(f"Ordonnance n° {printed}"))
    pdf.set_author(to_latin1(issuer.name))
    pdf.set_lang("fr-FR")
    pdf.set_margins(18, 15, 18)
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.add_page()

    # the prescriber
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 6, to_latin1(issuer.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    details = [issuer.profession] if issuer.profession else []
    if issuer.rpps:
        details.append(f"N° RPPS : {issuer.rpps}")
    if issuer.idnat:
        details.append(f"IdNat : {issuer.idnat}")
    if details:
        pdf.cell(0, 4.5, to_latin1(" - ".join(details)), new_x="LMARGIN", new_y="NEXT")
    if issuer.structure:
        pdf.cell(0, 4.5, to_latin1(issuer.structure), new_x="LMARGIN", new_y="NEXT")
    for address_line in issuer.address:
        pdf.cell(0, 4.5, to_latin1(address_line), new_x="LMARGIN", new_y="NEXT")
    if issuer.phone:
        pdf.cell(0, 4.5, to_latin1(f"Tél. : {issuer.phone}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    place = f"{issuer.city}, le " if issuer.city else "Le "
    pdf.cell(0, 5, to_latin1(place + _long_date(created.date())), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    # the patient
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, to_latin1(f"Patient(e) : {patient.name}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    facts = []
    if patient.birth_date:
        facts.append(f"Né(e) le {patient.birth_date.strftime('%d/%m/%Y')}")
    if patient.ins:
        facts.append(f"INS : {patient.ins}")
    if facts:
        pdf.cell(0, 4.5, to_latin1(" - ".join(facts)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)

    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, "ORDONNANCE", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    # the lines
    for index, line in enumerate(prescription.lines, start=1):
        pdf.set_font("Helvetica", "B", 10)
        for i, text in enumerate(textwrap.wrap(to_latin1(f"{index}. {line.medicine.name}"), _WRAP)):
            pdf.cell(0, 5, ("   " if i else "") + text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        packs = line.medicine.packs(line.packs_per_delivery)
        words = [
            line.dosage_text() + ".",
            f"Quantité : {packs} ({line.medicine.form}, {line.medicine.strength}).",
            line.renewal_text() + ".",
        ]
        if not line.substitution_allowed:
            words.append("Non substituable.")
        for paragraph in words:
            for text in textwrap.wrap(to_latin1(paragraph), _WRAP - 4):
                pdf.cell(0, 5, "    " + text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 9)
    validity = (
        f"Ordonnance valable du {prescription.start.strftime('%d/%m/%Y')} "
        f"au {prescription.end.strftime('%d/%m/%Y')}."
    )
    pdf.cell(0, 5, to_latin1(validity), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    # the QR code and the number in clear
    size = 38.0
    if pdf.get_y() + size + 12 > pdf.h - 22:
        pdf.add_page()
    top = pdf.get_y()
    pdf.image(io.BytesIO(qr_png(qr_payload)), x=pdf.l_margin, y=top, w=size, h=size)
    pdf.set_xy(pdf.l_margin + size + 6, top + 6)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, to_latin1("N° d'ordonnance"), new_x="LEFT", new_y="NEXT")
    pdf.set_font("Courier", "B", 14)
    pdf.cell(0, 7, printed, new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    notice = (
        "Présentez ce document à votre pharmacien : le QR code lui donne accès à cette ordonnance. "
        "Sans le QR code, le pharmacien a besoin de ce numéro et de votre date de naissance. "
        "Ne le diffusez pas."
    )
    for text in textwrap.wrap(to_latin1(notice), 70):
        pdf.cell(0, 4, text, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(pdf.l_margin, top + size + 6)
    pdf.set_font("Helvetica", "I", 10)
    pdf.cell(0, 5, to_latin1(issuer.name), align="R", new_x="LMARGIN", new_y="NEXT")

    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", "I", 7)
    pages = pdf.page_no()
    for page in range(1, pages + 1):
        pdf.page = page
        pdf.set_y(-15)
        pdf.cell(
            0,
            4,
            to_latin1(f"Ordonnance numérique n° {printed} - page {page}/{pages}"),
            align="C",
        )
    return bytes(pdf.output())
