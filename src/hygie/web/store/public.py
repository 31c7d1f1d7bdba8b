"""(being written)"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute

from hygie.ports import KeyValueStore
from hygie.store.service import StoreService


def routes(store: StoreService, kv: KeyValueStore, clock: Callable[[], int]) -> list[BaseRoute]:
    return []
