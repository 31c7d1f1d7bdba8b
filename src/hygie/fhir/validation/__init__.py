"""Fast structural validation of FHIR R4 (4.0.1) resources, compiled from the StructureDefinitions.

Every write goes through :func:`require_valid`. The StructureDefinitions of ``profiles-resources.json``
and ``profiles-types.json`` are compiled once per process (lazily, per resource type) into plain
tables (:mod:`.compiler`), and a resource is checked by one recursive walk over its JSON
(:mod:`.validator`): resource type, unknown elements, cardinalities, required elements, JSON types and
spec regexes of primitives, choice types, backbone elements and content references, data types,
contained resources, reference syntax, ids, and codes of required bindings to enumerable value sets.

FHIRPath invariants (the ``constraint`` of each element) are not evaluated; see :mod:`.validator` for
the few structural ones that are checked anyway.
"""

from __future__ import annotations

from typing import Any

from hygie.fhir.outcome import Issue, Unprocessable
from hygie.fhir.validation.validator import validate_resource

__all__ = ["require_valid", "validate_resource"]


def require_valid(resource: dict[str, Any]) -> None:
    """Raise :class:`~hygie.fhir.outcome.Unprocessable` (422) listing every issue if invalid."""
    issues: list[Issue] = validate_resource(resource)
    if issues:
        raise Unprocessable(issues)
