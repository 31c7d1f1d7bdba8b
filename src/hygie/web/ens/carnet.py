"""ENS section (to be built in this session): see issue 4."""

from __future__ import annotations

from starlette.routing import BaseRoute

from hygie.web.ens.core import Ens


def routes(ens: Ens) -> list[BaseRoute]:
    return []
