"""Small French PDF documents for the synthetic DocumentReferences (fpdf2, core Helvetica font).

A document is a letterhead (structure and author), a patient banner, a title and sections of text.
Everything is deterministic: the PDF creation date is the document date, so the same input always
gives the same bytes (and the same SHA-1 in ``DocumentReference.content.attachment.hash``).

The core PDF fonts only cover Latin-1, so typographic characters outside it (``’``, ``œ``, ``—``…)
are replaced by their ASCII equivalents; all French accented letters are in Latin-1. Lines are
wrapped here with :func:`textwrap.wrap` rather than with fpdf2's ``multi_cell``, which is about ten
times slower and would dominate generation time.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime

from fpdf import FPDF

from hygie.domain.french import to_latin1

__all__ = ["PdfDocument", "render_pdf", "to_latin1"]

_WRAP = 100  # characters per line at 10 pt Helvetica on an A4 page with 15 mm margins


@dataclass(slots=True)
class PdfDocument:
    """The content of one document: header lines, patient banner, title, sections of paragraphs."""

    title: str
    issuer: list[str]
    author: str
    patient: list[str]
    created: datetime
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    footer: str = "Document fictif produit par le générateur de démonstration Hygie - données synthétiques."


def render_pdf(doc: PdfDocument) -> bytes:
    """The PDF bytes of ``doc`` (A4, one or more pages), starting with ``%PDF``."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(doc.created)
    pdf.set_title(to_latin1(doc.title))
    pdf.set_author(to_latin1(doc.author))
    pdf.set_lang("fr-FR")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 11)
    for i, line in enumerate(doc.issuer):
        if i == 1:
            pdf.set_font("Helvetica", "", 9)
        pdf.cell(0, 5, to_latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    for line in doc.patient:
        pdf.cell(0, 5, to_latin1(line), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, to_latin1(doc.title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, paragraphs in doc.sections:
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 7, to_latin1(heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for paragraph in paragraphs:
            for line in textwrap.wrap(to_latin1(paragraph), _WRAP) or [""]:
                pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    pdf.ln(6)
    pdf.set_font("Helvetica", "I", 10)
    pdf.cell(0, 5, to_latin1(doc.author), align="R", new_x="LMARGIN", new_y="NEXT")
    # The footer goes on every page; auto page break off so that writing it never adds a page.
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", "I", 7)
    for number in range(1, pdf.page_no() + 1):
        pdf.page = number
        pdf.set_y(-15)
        pdf.cell(0, 4, to_latin1(doc.footer), align="C")
    return bytes(pdf.output())
