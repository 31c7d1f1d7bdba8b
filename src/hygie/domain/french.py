"""French words the services write for people (dates in full), and French text in PDF core fonts."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["FRENCH_MONTHS", "fr_day", "to_latin1"]

_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")

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


def fr_day(value: object) -> str:
    """ "12/04/1985" from an ISO date or dateTime (its date part as written); the input unchanged
    when it is not one (a partial date "1985-04" stays as written)."""
    text = "" if value is None else str(value)
    found = _ISO_DAY.match(text)
    if found is None:
        return text
    year, month, day = found.groups()
    return f"{day}/{month}/{year}"
