"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from hygie.web.store.core import MemberPortal


def routes(portal: MemberPortal) -> list[BaseRoute]:
    return []
