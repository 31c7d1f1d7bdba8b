"""A real Hygie server on a loopback port, for tests that need HTTP from outside the process
(a browser, an OpenID provider redirecting back).

The runtime and uvicorn run on their own event loop in a thread; :meth:`LiveServer.call` runs a
coroutine on that loop (to seed data through the same runtime the server uses).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import uvicorn

from hygie.bootstrap import Runtime, open_runtime
from hygie.config import Settings
from hygie.web.app import create_app

T = TypeVar("T")


@dataclass
class LiveServer:
    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server
    thread: threading.Thread

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_live_server(
    settings: Settings, port: int, app_for: Callable[[Runtime], Any] = lambda rt: create_app(runtime=rt)
) -> LiveServer:
    """Open the runtime, serve ``app_for(runtime)`` on 127.0.0.1:``port`` and wait until it answers."""
    started: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        runtime = await open_runtime(settings)
        server = uvicorn.Server(
            uvicorn.Config(app_for(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        started.update(runtime=runtime, server=server, loop=asyncio.get_running_loop())
        ready.set()
        try:
            await server.serve()
        finally:
            await runtime.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(30):
        pytest.fail("the Hygie runtime did not open")
    server: uvicorn.Server = started["server"]
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the Hygie server did not start")
        time.sleep(0.05)
    return LiveServer(started["runtime"], started["loop"], server, thread)
