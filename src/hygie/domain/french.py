"""French words the services write for people (dates in full)."""

from __future__ import annotations

from typing import Final

__all__ = ["FRENCH_MONTHS"]

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
