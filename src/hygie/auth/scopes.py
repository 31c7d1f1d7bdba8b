"""SMART App Launch 2.x scopes (http://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

Grammar of a resource scope: ``(patient|user|system)/(Type|*).<permissions>[?param=value&…]``
where permissions are SMART v2 letters ``c r u d s`` in that order (no repeats) or SMART v1
``read`` (= ``rs``), ``write`` (= ``cud``), ``*`` (= ``cruds``). Other scopes: ``openid``,
``fhirUser``, ``profile``, ``launch``, ``launch/patient``, ``launch/encounter``,
``offline_access``, ``online_access``.

Scopes only ever *narrow* what the access policy allows: :meth:`ScopeSet.permits` says whether
some granted scope covers an interaction on a type, and returns the fine-grained query
restrictions that must then also hold (v2 ``?category=…``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

from hygie.fhir.definitions import resource_types

__all__ = [
    "Context",
    "InvalidScope",
    "Permission",
    "ResourceScope",
    "ScopeSet",
    "parse_scope",
    "parse_scopes",
]

Context = Literal["patient", "user", "system"]
Permission = Literal["c", "r", "u", "d", "s"]

# which permission letter an interaction needs
INTERACTION_PERMISSION: dict[str, Permission] = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "search": "s",
    "history-type": "s",
    "operation": "r",
}

_V2 = re.compile(r"^c?r?u?d?s?$")
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")
NON_RESOURCE = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "email",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)


class InvalidScope(ValueError):
    """A scope string that does not follow the SMART grammar."""


@dataclass(frozen=True, slots=True)
class ResourceScope:
    context: Context
    resource_type: str  # "*" for every type
    permissions: frozenset[Permission]
    restrictions: tuple[tuple[str, str], ...] = ()  # v2 query parameters, ANDed
    text: str = ""

    def covers(self, resource_type: str, permission: Permission) -> bool:
        return (self.resource_type in ("*", resource_type)) and permission in self.permissions

    def narrowed_to(self, other: ResourceScope) -> ResourceScope | None:
        """The intersection of two scopes of the same context, or None if they do not meet."""
        if self.context != other.context:
            return None
        if self.resource_type == "*":
            rtype = other.resource_type
        elif other.resource_type in ("*", self.resource_type):
            rtype = self.resource_type
        else:
            return None
        perms = self.permissions & other.permissions
        if not perms:
            return None
        restrictions = tuple(dict.fromkeys(self.restrictions + other.restrictions))
        letters = "".join(p for p in "cruds" if p in perms)
        query = ("?" + "&".join(f"{k}={v}" for k, v in restrictions)) if restrictions else ""
        return ResourceScope(
            self.context, rtype, perms, restrictions, f"{self.context}/{rtype}.{letters}{query}"
        )


def parse_scope(text: str) -> ResourceScope | str:
    """A resource scope, or the scope string itself for non-resource scopes.

    Raises :class:`InvalidScope` for a malformed resource scope or an unknown scope.
    """
    if text in NON_RESOURCE or text.startswith("launch/"):
        return text
    m = _SCOPE.match(text)
    if not m:
        raise InvalidScope(f"invalid scope {text!r}")
    context, rtype, perms, query = m.groups()
    if rtype != "*" and rtype not in resource_types():
        raise InvalidScope(f"unknown resource type in scope {text!r}")
    if perms == "read":
        letters = "rs"
    elif perms == "write":
        letters = "cud"
    elif perms == "*":
        letters = "cruds"
    elif _V2.match(perms) and perms:
        letters = perms
    else:
        raise InvalidScope(
            f"invalid permissions {perms!r} in scope {text!r} (use c, r, u, d, s in that order)"
        )
    restrictions: tuple[tuple[str, str], ...] = ()
    if query:
        if perms in ("read", "write", "*"):
            raise InvalidScope(f"query restrictions need SMART v2 permissions: {text!r}")
        restrictions = tuple(parse_qsl(query[1:], keep_blank_values=False, strict_parsing=True))
    return ResourceScope(context, rtype, frozenset(letters), restrictions, text)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """The scopes of one grant, parsed once."""

    resources: tuple[ResourceScope, ...] = ()
    others: frozenset[str] = field(default_factory=frozenset)

    @property
    def text(self) -> str:
        return " ".join([*sorted(self.others), *(s.text for s in self.resources)])

    def has(self, scope: str) -> bool:
        return scope in self.others

    def contexts(self) -> set[str]:
        return {s.context for s in self.resources}

    def permits(
        self, context: Context, resource_type: str, interaction: str
    ) -> tuple[bool, list[tuple[tuple[str, str], ...]]]:
        """Whether any scope of ``context`` allows the interaction on the type.

        Returns (allowed, restrictions): when allowed, ``restrictions`` lists, per covering
        scope, its query restrictions — the data must satisfy at least one of them (an empty
        tuple in the list means "no restriction").
        """
        permission = INTERACTION_PERMISSION.get(interaction)
        if permission is None:
            return False, []
        covering = [s for s in self.resources if s.context == context and s.covers(resource_type, permission)]
        if not covering:
            return False, []
        return True, [s.restrictions for s in covering]

    def narrow(self, allowed: ScopeSet) -> ScopeSet:
        """The part of these (requested) scopes that ``allowed`` (registered) permits."""
        kept: list[ResourceScope] = []
        for requested in self.resources:
            for registered in allowed.resources:
                meet = requested.narrowed_to(registered)
                if meet is not None and meet not in kept:
                    kept.append(meet)
        others = frozenset(o for o in self.others if o in allowed.others or o in _ALWAYS_GRANTABLE)
        return ScopeSet(tuple(kept), others)


_ALWAYS_GRANTABLE = frozenset({"openid", "fhirUser", "profile", "online_access"})


def parse_scopes(text: str) -> ScopeSet:
    """Parse a space-separated scope string (raises :class:`InvalidScope`)."""
    resources: list[ResourceScope] = []
    others: set[str] = set()
    for item in text.split():
        parsed = parse_scope(item)
        if isinstance(parsed, ResourceScope):
            if parsed not in resources:
                resources.append(parsed)
        else:
            others.add(parsed)
    return ScopeSet(tuple(resources), frozenset(others))
