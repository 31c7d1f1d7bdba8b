"""French words the services write for people (dates in full), and French text in PDF core fonts."""

from __future__ import annotations

from typing import Final

__all__ = ["FRENCH_MONTHS", "to_latin1"]

FRENCH_MONTHS: Final = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

# typographic characters the PDF core fonts (Latin-1) lack, and their plain equivalents
_REPLACEMENTS = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "œ": "oe",
        "Œ": "OE",
        "\u202f": " ",
        "\u2009": " ",
        "\u00a0": " ",
    }
)


def to_latin1(text: str) -> str:
    """``text`` in what the core PDF fonts print: typographic characters mapped, others ``?``."""
    return text.translate(_REPLACEMENTS).encode("latin-1", "replace").decode("latin-1")
