"""The CapabilityStatement served at ``/metadata``: exactly what is implemented, no more.

It is built from the same registries the server runs on (resource types from the
StructureDefinitions, search parameters from the SearchParameter definitions, with the
``special`` ones left out because they are not implemented — all but ``Location.near``), so it
cannot drift.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from hygie import __version__
from hygie.fhir.definitions import resource_types
from hygie.fhir.searchparams import search_params

__all__ = ["capability_statement"]

# the statement describes this running software: it is dated when the process started
_STARTED = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]


# Hygie's own operations (documented in docs/fhir/): their OperationDefinition canonical URLs
_HYGIE_OPERATIONS = "https://hygie.example/fhir/OperationDefinition/"


def _search_params(rtype: str) -> list[dict[str, Any]]:
    out = []
    for code, sp in sorted(search_params(rtype).items()):
        unsupported = sp.type == "special" and code != "near"
        if unsupported or code in ("_text", "_content", "_query", "_list", "_filter"):
            continue
        item: dict[str, Any] = {"name": code, "type": sp.type}
        if sp.url:
            item["definition"] = sp.url
        out.append(item)
    return out


def _revincludes() -> dict[str, list[str]]:
    """Target type -> the "Source:param" references that can point at it (for _revinclude)."""
    out: dict[str, list[str]] = {}
    types = resource_types()
    for source in sorted(types):
        for code, sp in sorted(search_params(source).items()):
            if sp.type != "reference":
                continue
            for target in sp.target or ():
                if target in types:
                    out.setdefault(target, []).append(f"{source}:{code}")
    return out


@functools.cache
def _resources() -> tuple[dict[str, Any], ...]:
    out = []
    revincludes = _revincludes()
    for rtype in sorted(resource_types()):
        params = search_params(rtype)
        references = sorted(code for code, sp in params.items() if sp.type == "reference")
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": c} for c in _INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-match",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
            "searchInclude": [f"{rtype}:{c}" for c in references],
            "searchRevInclude": revincludes.get(rtype, []),
            "searchParam": _search_params(rtype),
        }
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                # identification and entering the care relationship (fhir/operations/identity.py)
                *(
                    {"name": name, "definition": f"{_HYGIE_OPERATIONS}Patient-{name}"}
                    for name in ("identify", "identity-check", "declare-care")
                ),
            ]
        elif rtype == "MedicationRequest":
            # e-prescription: write, open by its code, dispense (fhir/operations/eprescription.py)
            entry["operation"] = [
                {"name": name, "definition": f"{_HYGIE_OPERATIONS}MedicationRequest-{name}"}
                for name in ("prescribe", "lookup", "dispense")
            ]
        elif rtype == "Observation":
            # the latest values of each code in one query (fhir/operations/lastn.py)
            entry["operation"] = [
                {"name": "lastn", "definition": "http://hl7.org/fhir/OperationDefinition/Observation-lastn"}
            ]
        out.append(entry)
    return tuple(out)


def _security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR: every interaction but this statement needs an OAuth 2.0 bearer token; the
    endpoints are also in ``.well-known/smart-configuration``."""
    issuer = base_url.removesuffix("/fhir")
    uris = {
        "authorize": f"{issuer}/oauth/authorize",
        "token": f"{issuer}/oauth/token",
        "revoke": f"{issuer}/oauth/revoke",
        "introspect": f"{issuer}/oauth/introspect",
    }
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth 2.0 bearer tokens (SMART App Launch 2.x, SMART Backend Services)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": name, "valueUri": uri} for name, uri in uris.items()],
            }
        ],
        "description": "Every request but GET /metadata needs Authorization: Bearer <access token>.",
    }


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "Hygie",
        "kind": "instance",
        "software": {"name": "Hygie", "version": __version__},
        "implementation": {"description": "Hygie FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": _security(base_url),
                "documentation": (
                    "Search modifiers: :missing :exact :contains :text :not :of-type :identifier and type "
                    "modifiers on references, :below/:above on uri; prefixes eq ne lt gt le ge sa eb ap; "
                    "chains one level deep; _has one level; _include/_revinclude with :iterate (bounded)."
                ),
                "resource": list(_resources()),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                "searchParam": [
                    {"name": "_id", "type": "token"},
                    {"name": "_lastUpdated", "type": "date"},
                    {"name": "_tag", "type": "token"},
                    {"name": "_profile", "type": "uri"},
                    {"name": "_security", "type": "token"},
                ],
            }
        ],
    }
