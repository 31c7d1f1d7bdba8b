"""Identity trust statuses (RNIV) and the state machine that moves an identity between them.

An identity has exactly one status at a time (digest §1.6, RNIV exigence EXI SI 07)::

                    document check                      INSi success
          PROV ─────────────────────────▶ VALI ─────────────────────────▶ QUAL
            │                                                              ▲
            │ INSi success                         document check          │
            └──────────────────────────▶ RECUP ────────────────────────────┘

          any status ── Appli carte Vitale (AV) ──▶ QUAL
          any status ── set DOUT or FICT ─────────▶ PROV (evidence withdrawn)

* **Document check** (high-trust ID document): ``PROV``→``VALI``, ``RECUP``→``QUAL``; records the
  ``validationMode`` and ``validationDate``.
* **INSi success** (traits returned by the teleservice match): ``PROV``→``RECUP``, ``VALI``→``QUAL``;
  records ``dateInterrogationINSi`` and ``methodCollection``. A failed INSi call withdraws the INSi
  evidence (``RECUP``→``PROV``, ``QUAL``→``VALI``): the INS can no longer be trusted. *Design note.*
* **Appli carte Vitale**: ``QUAL`` directly, without INSi (mode and method ``AV``).
* **Attributes**: ``DOUT`` (doubtful) and ``FICT`` (fictitious) force ``PROV``, withdraw all evidence
  and block INSi calls, document checks and the Vitale app until removed (EXI SI 09). They cannot be
  combined; ``FICT`` takes no other attribute (our reading of the RNIV); ``HOMD``/``HOMA`` (homonyms)
  may be combined with ``DOUT`` and with each other.
* Only a ``QUAL`` identity's matricule may be exchanged (:func:`may_share_ins`).

Every function is pure: it takes an :class:`IdentityState` and returns a new one, or raises an
:class:`IdentityError` whose ``str()`` is a plain French sentence for professionals and whose ``code``
is a stable English identifier for programs (API error bodies, tests, logs).

The exception tree::

    IdentityError (ValueError)
    ├── TransitionRefused       a transition not allowed from the current status or attributes
    │   └── InsiCallBlocked     INSi call refused because of DOUT/FICT (EXI SI 09)
    ├── ConflictingAttributes   DOUT with FICT, or FICT with anything
    └── InvalidEvidence         a mode, method or date that cannot support the transition
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Final

__all__ = [
    "CollectionMethod",
    "ConflictingAttributes",
    "IdentityAttribute",
    "IdentityError",
    "IdentityState",
    "IdentityStatus",
    "InsiCallBlocked",
    "InvalidEvidence",
    "TransitionRefused",
    "ValidationMode",
    "check_state",
    "clear_attribute",
    "create",
    "may_call_insi",
    "may_share_ins",
    "record_document_check",
    "record_insi_result",
    "record_vitale_app",
    "require_insi_allowed",
    "set_attribute",
    "with_comment",
]

ADULT_AGE: Final = 18


class IdentityStatus(StrEnum):
    """The four RNIV trust statuses (code system ``fr-core-cs-identity-status``)."""

    PROV = "PROV"
    RECUP = "RECUP"
    VALI = "VALI"
    QUAL = "QUAL"

    @property
    def label(self) -> str:
        """The French label shown to professionals."""
        return _STATUS_LABELS[self]


_STATUS_LABELS: Final = {
    IdentityStatus.PROV: "identité provisoire",
    IdentityStatus.RECUP: "identité récupérée",
    IdentityStatus.VALI: "identité validée",
    IdentityStatus.QUAL: "identité qualifiée",
}


class IdentityAttribute(StrEnum):
    """RNIV identity attributes that qualify a status (doubt, fiction, homonymy)."""

    DOUT = "DOUT"
    FICT = "FICT"
    HOMD = "HOMD"
    HOMA = "HOMA"

    @property
    def label(self) -> str:
        """The French label shown to professionals."""
        return _ATTRIBUTE_LABELS[self]


_ATTRIBUTE_LABELS: Final = {
    IdentityAttribute.DOUT: "identité douteuse",
    IdentityAttribute.FICT: "identité fictive",
    IdentityAttribute.HOMD: "homonymie détectée",
    IdentityAttribute.HOMA: "homonymie avérée",
}
_BLOCKING: Final = frozenset({IdentityAttribute.DOUT, IdentityAttribute.FICT})


class ValidationMode(StrEnum):
    """How the identity was checked (``fr-core-cs-mode-validation-identity``, codes of the digest)."""

    CN = "CN"
    PA = "PA"
    CS = "CS"
    ECN = "eCN"
    IN = "IN"
    AV = "AV"
    LEP = "LEP"
    LECV = "LECV"
    AN = "AN"
    ANCV = "ANCV"
    CC = "CC"

    @property
    def minors_only(self) -> bool:
        """True for the modes reserved to minors (checked on a parent's or family document)."""
        return self in _MINOR_MODES


_MINOR_MODES: Final = frozenset(
    {ValidationMode.LEP, ValidationMode.LECV, ValidationMode.AN, ValidationMode.ANCV, ValidationMode.CC}
)


class CollectionMethod(StrEnum):
    """How the traits sent to INSi were collected (``methodCollection``)."""

    SM = "SM"
    CV = "CV"
    INSI = "INSI"
    CB = "CB"
    RFID = "RFID"
    AV = "AV"


# --------------------------------------------------------------------------- errors
class IdentityError(ValueError):
    """A refused identity operation: ``str()`` is French for professionals, ``code`` is for programs."""

    code: str = "identity-error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TransitionRefused(IdentityError):
    """The transition is not allowed from the current status or attributes."""

    code = "transition-refused"


class InsiCallBlocked(TransitionRefused):
    """An INSi call on an identity flagged doubtful or fictitious (EXI SI 09)."""

    code = "insi-blocked"


class ConflictingAttributes(IdentityError):
    """Attributes that cannot be combined (``DOUT`` with ``FICT``, ``FICT`` with any other)."""

    code = "conflicting-attributes"


class InvalidEvidence(IdentityError):
    """A mode, method or date that cannot support the requested transition."""

    code = "invalid-evidence"


# --------------------------------------------------------------------------- state
@dataclass(frozen=True, slots=True)
class IdentityState:
    """The trust status of one identity and the evidence that supports it.

    ``validation_mode``/``validation_date`` record the document check (or the Vitale app),
    ``insi_query_date``/``method_collection`` the successful INSi query. Both are cleared whenever the
    evidence stops supporting the status (``DOUT``/``FICT`` set, INSi failure), so the state written
    to FHIR never claims a check that no longer counts.
    """

    status: IdentityStatus = IdentityStatus.PROV
    attributes: frozenset[IdentityAttribute] = field(default_factory=frozenset)
    validation_mode: ValidationMode | None = None
    validation_date: date | None = None
    insi_query_date: date | None = None
    method_collection: CollectionMethod | None = None
    comment: str | None = None

    @property
    def has_document_check(self) -> bool:
        """True when a high-trust document check (or the Vitale app) supports the status."""
        return self.validation_mode is not None

    @property
    def has_insi_evidence(self) -> bool:
        """True when a successful INSi query (or the Vitale app, which replaces it) supports it.

        The Vitale app leaves ``AV`` as both validation mode and collection method; a later document
        check replaces the mode but the method still records that the app vouched for the INS.
        """
        return (
            self.insi_query_date is not None
            or self.validation_mode is ValidationMode.AV
            or self.method_collection is CollectionMethod.AV
        )

    @property
    def blocked(self) -> bool:
        """True when ``DOUT`` or ``FICT`` is set: no INSi call, no validation."""
        return bool(self.attributes & _BLOCKING)


def create(*, comment: str | None = None) -> IdentityState:
    """A new identity: ``PROV``, no attribute, no evidence."""
    return IdentityState(comment=comment)


def _status_from_evidence(document: bool, insi: bool) -> IdentityStatus:
    if document and insi:
        return IdentityStatus.QUAL
    if document:
        return IdentityStatus.VALI
    if insi:
        return IdentityStatus.RECUP
    return IdentityStatus.PROV


def _blocking_labels(state: IdentityState) -> str:
    return " et ".join(a.label for a in sorted(state.attributes & _BLOCKING))


def may_call_insi(state: IdentityState) -> bool:
    """False when ``DOUT`` or ``FICT`` forbids querying the INSi teleservice (EXI SI 09)."""
    return not state.blocked


def require_insi_allowed(state: IdentityState) -> None:
    """Raise :class:`InsiCallBlocked` when ``DOUT`` or ``FICT`` forbids an INSi call."""
    if state.blocked:
        raise InsiCallBlocked(
            f"Appel au téléservice INSi interdit : l'identité porte l'attribut {_blocking_labels(state)}. "
            "Levez le doute avant toute interrogation."
        )


def _require_not_blocked(state: IdentityState, action: str) -> None:
    if state.blocked:
        raise TransitionRefused(
            f"{action} impossible : l'identité porte l'attribut {_blocking_labels(state)}. "
            "Retirez cet attribut une fois le doute levé.",
            code="identity-flagged",
        )


def record_document_check(
    state: IdentityState, mode: ValidationMode, on: date, *, birth_date: date | None = None
) -> IdentityState:
    """Record a check against a high-trust ID document: ``PROV``→``VALI``, ``RECUP``→``QUAL``.

    ``mode`` ``AV`` (Appli carte Vitale) is delegated to :func:`record_vitale_app`. A minors' mode
    (``LEP``, ``LECV``, ``AN``, ``ANCV``, ``CC``) is refused when ``birth_date`` shows an adult on ``on``.
    A new check on an already validated identity updates the evidence and keeps the status.
    """
    mode = ValidationMode(mode)
    if mode is ValidationMode.AV:
        return record_vitale_app(state, on)
    _require_not_blocked(state, "Validation de l'identité")
    if birth_date is not None:
        if on < birth_date:
            raise InvalidEvidence(
                "La date de validation précède la date de naissance.", code="date-before-birth"
            )
        if mode.minors_only and _age_on(birth_date, on) >= ADULT_AGE:
            raise InvalidEvidence(
                f"Le mode de validation {mode.value} est réservé aux mineurs ; "
                "pour un adulte, utilisez une pièce d'identité à haut niveau de confiance.",
                code="minors-mode-for-adult",
            )
    return replace(
        state,
        status=_status_from_evidence(True, state.has_insi_evidence),
        validation_mode=mode,
        validation_date=on,
    )


def record_insi_result(
    state: IdentityState, matched: bool, query_date: date, method: CollectionMethod
) -> IdentityState:
    """Record an INSi query: success ``PROV``→``RECUP``, ``VALI``→``QUAL``; failure withdraws INSi evidence.

    Refused with :class:`InsiCallBlocked` when ``DOUT`` or ``FICT`` is set: the call should not have
    been made. A failure turns ``RECUP`` back into ``PROV`` and ``QUAL`` into ``VALI`` (the INS returned
    earlier no longer matches the traits), and leaves ``PROV``/``VALI`` unchanged.
    """
    require_insi_allowed(state)
    method = CollectionMethod(method)
    if not matched:
        # The INS returned earlier no longer matches: withdraw the INSi evidence, and the Vitale app's
        # validation with it (the app vouched for the same INS).
        withdrawn = replace(state, insi_query_date=None, method_collection=None)
        if state.validation_mode is ValidationMode.AV:
            withdrawn = replace(withdrawn, validation_mode=None, validation_date=None)
        return replace(withdrawn, status=_status_from_evidence(withdrawn.has_document_check, False))
    return replace(
        state,
        status=_status_from_evidence(state.has_document_check, True),
        insi_query_date=query_date,
        method_collection=method,
    )


def record_vitale_app(state: IdentityState, on: date) -> IdentityState:
    """Record an identification through the Appli carte Vitale: ``QUAL`` directly, without INSi.

    Also valid for a dependant linked in the holder's app. Refused when ``DOUT`` or ``FICT`` is set.
    """
    _require_not_blocked(state, "Qualification par l'appli carte Vitale")
    return replace(
        state,
        status=IdentityStatus.QUAL,
        validation_mode=ValidationMode.AV,
        validation_date=on,
        method_collection=CollectionMethod.AV,
    )


def set_attribute(state: IdentityState, attribute: IdentityAttribute) -> IdentityState:
    """Add an attribute; ``DOUT``/``FICT`` force ``PROV`` and withdraw every piece of evidence.

    Raises :class:`ConflictingAttributes` for ``DOUT`` with ``FICT`` and for ``FICT`` with any other
    attribute. Setting an attribute already present changes nothing.
    """
    attribute = IdentityAttribute(attribute)
    attributes = state.attributes | {attribute}
    _check_combination(attributes)
    if attribute not in _BLOCKING:
        return replace(state, attributes=attributes)
    return replace(
        state,
        status=IdentityStatus.PROV,
        attributes=attributes,
        validation_mode=None,
        validation_date=None,
        insi_query_date=None,
        method_collection=None,
    )


def clear_attribute(state: IdentityState, attribute: IdentityAttribute) -> IdentityState:
    """Remove an attribute; the status stays as it is (a lifted doubt does not restore evidence)."""
    return replace(state, attributes=state.attributes - {IdentityAttribute(attribute)})


def with_comment(state: IdentityState, comment: str | None) -> IdentityState:
    """The same state with a free-text comment (why a doubt was raised, which document was seen…)."""
    return replace(state, comment=comment or None)


def _check_combination(attributes: Iterable[IdentityAttribute]) -> None:
    present = frozenset(attributes)
    if {IdentityAttribute.DOUT, IdentityAttribute.FICT} <= present:
        raise ConflictingAttributes(
            "Une identité ne peut pas être à la fois douteuse et fictive : choisissez l'un des deux attributs."
        )
    if IdentityAttribute.FICT in present and len(present) > 1:
        others = ", ".join(a.label for a in sorted(present - {IdentityAttribute.FICT}))
        raise ConflictingAttributes(
            f"Une identité fictive ne peut porter aucun autre attribut (ici : {others})."
        )


def check_state(state: IdentityState) -> None:
    """Raise :class:`IdentityError` if a state read from outside (FHIR, database) is inconsistent.

    Checks the attribute combination, that ``DOUT``/``FICT`` come with ``PROV``, and that the status
    is backed by the evidence it requires (``VALI``/``QUAL`` a validation mode, ``RECUP``/``QUAL`` an
    INSi date or the Vitale app).
    """
    _check_combination(state.attributes)
    if state.blocked and state.status is not IdentityStatus.PROV:
        raise InvalidEvidence(
            f"Une identité portant l'attribut {_blocking_labels(state)} doit être provisoire, "
            f"pas « {state.status.label} ».",
            code="flagged-not-provisional",
        )
    needs_document = state.status in (IdentityStatus.VALI, IdentityStatus.QUAL)
    needs_insi = state.status in (IdentityStatus.RECUP, IdentityStatus.QUAL)
    if needs_document and not state.has_document_check:
        raise InvalidEvidence(
            f"Statut « {state.status.label} » sans mode de validation de l'identité.",
            code="missing-validation-mode",
        )
    if needs_insi and not state.has_insi_evidence:
        raise InvalidEvidence(
            f"Statut « {state.status.label} » sans date d'interrogation du téléservice INSi.",
            code="missing-insi-date",
        )


def may_share_ins(state: IdentityState) -> bool:
    """True only for ``QUAL``: the INS matricule may be exchanged (DMP, MSSanté, MES) only then."""
    return state.status is IdentityStatus.QUAL and not state.blocked


def _age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
