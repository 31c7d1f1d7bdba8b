"""What the ENS rules need from the FHIR service: reads, searches and writes as a named caller.

:class:`~hygie.web.portal.door.Door` implements it (the portal, the CLI): every call passes the
access policy and leaves its audit records. The rules never see a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from hygie.domain.access import Caller

__all__ = ["Records"]


class Records(Protocol):
    async def read(self, caller: Caller, resource_type: str, id: str) -> dict[str, Any] | None: ...

    async def search(
        self, caller: Caller, resource_type: str, params: Sequence[tuple[str, str]] = (), *, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    async def create(self, caller: Caller, resource: dict[str, Any]) -> dict[str, Any]: ...

    async def update(
        self, caller: Caller, resource: dict[str, Any], *, version: str | None = None
    ) -> dict[str, Any]: ...

    async def operation(
        self,
        caller: Caller,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        *,
        resource: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...
