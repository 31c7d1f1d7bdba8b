"""The registry of R4 search parameters, read from the official SearchParameter definitions.

Loaded lazily, once per process, from ``definitions.load_bundle_resources("search-parameters.json")``.
Each :class:`SearchParam` knows its type, bases, targets, modifiers and comparators, and compiles
its FHIRPath expression (specialised per resource type, see :mod:`hygie.fhir.fhirpath`) on first
use. ``search_params(resource_type)`` includes the parameters inherited from ``Resource``
(``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source``, ...) and
``DomainResource`` (``_text``).

Hygie adds a few parameters of its own (:data:`HYGIE_SEARCH_PARAMETERS`), declared as
SearchParameter resources like the official ones and indexed the same way: each names a Hygie
extension that the platform must find by a query rather than by reading every resource.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from hygie.fhir import definitions
from hygie.fhir.fhirpath import TypedBranch, compile_typed

__all__ = [
    "ParamType",
    "SearchParam",
    "SearchParamComponent",
    "all_search_params",
    "search_param",
    "search_param_by_url",
    "search_params",
]

ParamType = Literal[
    "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"
]

_ABSTRACT_BASES = ("Resource", "DomainResource")

_HYGIE = "https://hygie.example/fhir/"
# Hygie's own search parameters (SearchParameter resources, read after the official ones)
HYGIE_SEARCH_PARAMETERS: tuple[dict[str, Any], ...] = (
    {
        # the end of a closed health space's archive period (``domain/ens/lifecycle.py``): the
        # purge finds the spaces to erase with ``Consent?category=…|ens&ens-archive-until=lt<now>``
        "resourceType": "SearchParameter",
        "url": _HYGIE + "SearchParameter/Consent-ens-archive-until",
        "name": "ens-archive-until",
        "status": "active",
        "description": "End of the archive period of a closed health space (lifecycle Consent)",
        "code": "ens-archive-until",
        "base": ["Consent"],
        "type": "date",
        "expression": f"Consent.extension('{_HYGIE}StructureDefinition/ens-archive-until').value",
    },
)

_DEFAULT_MODIFIERS: dict[str, tuple[str, ...]] = {
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "text", "not", "above", "below", "in", "not-in", "of-type"),
    "reference": ("missing", "type", "identifier", "above", "below"),
    "uri": ("missing", "above", "below"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "composite": ("missing",),
    "special": ("missing",),
}
_ORDERED_COMPARATORS = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_ORDERED_TYPES = ("date", "number", "quantity")


@dataclass(frozen=True, slots=True)
class SearchParamComponent:
    """One part of a composite parameter: the component's definition and its expression.

    ``expression`` is relative to each node selected by the composite's own expression.
    """

    definition: str
    expression: str

    @property
    def param(self) -> SearchParam | None:
        """The component's own SearchParameter (for its type), when it is defined."""
        return search_param_by_url(self.definition)

    def compiled(self, resource_type: str, context_type: str | None) -> tuple[TypedBranch, ...]:
        """The component expression compiled for a focus of ``context_type`` in ``resource_type``."""
        return compile_typed(self.expression, resource_type, context_type)


@dataclass(frozen=True, slots=True, eq=False)
class SearchParam:
    """A search parameter as defined by its SearchParameter resource.

    ``extractor(resource_type)`` gives the expression compiled for one base type (compiled on
    first call, then cached): typed branches evaluated on ``[resource]`` with root ``resource``.
    ``expression`` is ``None`` for the parameters without one (``_text``, ``_content``,
    ``_query``), which are not indexed.
    """

    code: str
    type: ParamType
    base: tuple[str, ...]
    url: str
    expression: str | None
    target: tuple[str, ...] = ()
    components: tuple[SearchParamComponent, ...] = ()
    multiple_or: bool = True
    multiple_and: bool = True
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    xpath_usage: str = "normal"

    def extractor(self, resource_type: str) -> tuple[TypedBranch, ...]:
        """The compiled expression for ``resource_type`` (a base of this parameter or a subtype)."""
        if self.expression is None:
            return ()
        return compile_typed(self.expression, resource_type)


def _from_definition(resource: dict[str, Any]) -> SearchParam:
    """Build a :class:`SearchParam` from a SearchParameter resource, with default modifiers/comparators."""
    param_type: ParamType = resource["type"]
    targets = tuple(resource.get("target", ()))
    modifiers = tuple(resource.get("modifier", ())) or _DEFAULT_MODIFIERS.get(param_type, ())
    if param_type == "reference":
        modifiers = (*modifiers, *(t for t in targets if t not in modifiers))
    comparators = tuple(resource.get("comparator", ())) or (
        _ORDERED_COMPARATORS if param_type in _ORDERED_TYPES else ()
    )
    components = tuple(
        SearchParamComponent(component["definition"], component["expression"])
        for component in resource.get("component", ())
    )
    return SearchParam(
        code=resource["code"],
        type=param_type,
        base=tuple(resource.get("base", ())),
        url=resource.get("url", ""),
        expression=resource.get("expression") or None,
        target=targets,
        components=components,
        multiple_or=bool(resource.get("multipleOr", True)),
        multiple_and=bool(resource.get("multipleAnd", True)),
        modifiers=modifiers,
        comparators=comparators,
        xpath_usage=resource.get("xpathUsage", "normal"),
    )


@dataclass(frozen=True, slots=True)
class _Registry:
    """All parameters, by canonical url and by base type then code."""

    by_url: dict[str, SearchParam]
    by_base: dict[str, dict[str, SearchParam]]


@functools.cache
def _registry() -> _Registry:
    """Read the SearchParameter bundle once per process."""
    by_url: dict[str, SearchParam] = {}
    by_base: dict[str, dict[str, SearchParam]] = {}
    for resource in definitions.load_bundle_resources("search-parameters.json"):
        if resource.get("resourceType") != "SearchParameter" or "code" not in resource:
            continue
        param = _from_definition(resource)
        if param.url:
            by_url[param.url] = param
        for base in param.base:
            by_base.setdefault(base, {}).setdefault(param.code, param)
    for resource in HYGIE_SEARCH_PARAMETERS:
        param = _from_definition(resource)
        by_url[param.url] = param
        for base in param.base:
            by_base.setdefault(base, {})[param.code] = param
    return _Registry(by_url, by_base)


@functools.cache
def search_params(resource_type: str) -> Mapping[str, SearchParam]:
    """Every search parameter of a resource type, by code, including inherited ones.

    Unknown types get only the ``Resource`` / ``DomainResource`` parameters. The mapping is
    read-only and shared.
    """
    registry = _registry()
    merged: dict[str, SearchParam] = {}
    for base in (*_ABSTRACT_BASES, resource_type):
        merged.update(registry.by_base.get(base, {}))
    return MappingProxyType(merged)


def search_param(resource_type: str, code: str) -> SearchParam | None:
    """One search parameter of a resource type by code, or ``None``."""
    return search_params(resource_type).get(code)


def search_param_by_url(url: str) -> SearchParam | None:
    """A search parameter by its canonical url (as composite components refer to them)."""
    return _registry().by_url.get(url)


def all_search_params() -> tuple[SearchParam, ...]:
    """Every search parameter definition, once each."""
    return tuple(_registry().by_url.values())
