"""The Store santé on the web: the publishers' and the authorities' back offices, and the public
pages of the catalogue (an app's page and changelog, a report and its follow-up).

The catalogue as citizens and professionals browse it lives in their portals
(``web/ens/store.py``, ``web/bsp/apps.py``), on the same records (``store/service.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from hygie.web.portal.door import Door
from hygie.web.portal.forms import Forms
from hygie.web.portal.session import PortalAuth
from hygie.web.store import authority, public, publisher
from hygie.web.store.core import MemberPortal

if TYPE_CHECKING:
    from hygie.bootstrap import Runtime
    from hygie.web.oauth import OAuthWeb

__all__ = ["store_routes"]


def store_routes(runtime: Runtime, oauth: OAuthWeb) -> list[BaseRoute]:
    from hygie.bootstrap import clock_us  # noqa: PLC0415

    assert runtime.accounts is not None
    door = Door(runtime.service)
    auth = PortalAuth(oauth, runtime.accounts, runtime.resolver, door, runtime.kv, runtime.directory_read)
    forms = Forms(runtime.kv, clock_us, max_upload_bytes=runtime.settings.max_upload_bytes)
    editors = MemberPortal("publisher", door, auth, forms, clock_us, runtime.app_store)
    authorities = MemberPortal("authority", door, auth, forms, clock_us, runtime.app_store)
    return [
        *publisher.routes(editors),
        *authority.routes(authorities),
        *public.routes(runtime.app_store, runtime.kv, clock_us),
    ]
