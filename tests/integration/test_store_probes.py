"""The Store santé's probes over a real loopback HTTP server.

With ``allow_private`` (tests only) the probe reaches the server: an answer, an error, redirects
followed by hand, a server that never answers. Without it, the guard refuses loopback addresses
before any connection: the server sees no request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hygie.auth.clients import Client, ClientRegistry
from hygie.store.probes import GuardedBackend, Prober, ProbeRefused, ProbeTarget
from hygie.stores.kv import MemoryKeyValueStore

pytestmark = pytest.mark.anyio

SCOPE = "launch openid fhirUser patient/Observation.rs"
LOOPBACK = ("127.0.0.1",)


@dataclass
class Seen:
    """What the loopback server received: (path, Host header) per request."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


@dataclass
class Server:
    port: int
    seen: Seen

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.requests.append((self.path, self.headers.get("Host", "")))
            port = self.server.server_address[1]
            if self.path == "/slow":
                seen.release.wait(10)  # until the test is over: the probe gives up first
                self.answer(200)
            elif self.path == "/missing":
                self.answer(404)
            elif self.path == "/broken":
                self.answer(500)
            elif self.path == "/moved":
                self.answer(302, "/launch?from=moved")
            elif self.path == "/elsewhere":
                self.answer(303, f"http://localhost:{port}/launch")
            elif self.path == "/loop":
                self.answer(307, "/loop")
            elif self.path == "/sneaky":
                self.answer(302, f"http://admin:secret@127.0.0.1:{port}/launch")
            elif self.path == "/away":
                self.answer(302, "file:///etc/passwd")
            else:
                self.answer(200)

        def answer(self, status: int, location: str | None = None) -> None:
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(httpd.server_address[1], seen)
    finally:
        seen.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def app(server: Server, launch_path: str) -> Client:
    client, _ = await ClientRegistry(MemoryKeyValueStore(), lambda: 0).register(
        name="Suivi",
        scope=SCOPE,
        redirect_uris=[server.url("/callback")],
        launch_url=server.url(launch_path),
        audience=["professional"],
    )
    return client


async def launch_check(
    server: Server, path: str, *, allow_private: bool = True, timeout_s: float = 5.0
) -> str:
    """The launch_url check's detail; asserts the five checks came back."""
    prober = Prober(allow_private=allow_private, timeout_s=timeout_s)
    checks = await prober.probe(ProbeTarget(LOOPBACK, SCOPE, await app(server, path)))
    assert [c.code for c in checks] == [
        "registration",
        "redirect_uris",
        "scopes",
        "launch_url",
        "conformance",
    ]
    launch = checks[3]
    return ("ok: " if launch.ok else "failed: ") + launch.detail


async def test_a_launch_url_that_answers_passes(server: Server) -> None:
    prober = Prober(allow_private=True)
    checks = await prober.probe(ProbeTarget(LOOPBACK, SCOPE, await app(server, "/launch")))
    assert all(c.ok for c in checks), [c.detail for c in checks]
    assert checks[3].detail == f"« {server.url('/launch')} » répond (HTTP 200)."
    assert server.seen.requests == [("/launch", f"127.0.0.1:{server.port}")]


async def test_a_launch_url_that_answers_an_error_fails(server: Server) -> None:
    assert await launch_check(server, "/missing") == (
        f"failed: « {server.url('/missing')} » répond par une erreur (HTTP 404)."
    )
    assert await launch_check(server, "/broken") == (
        f"failed: « {server.url('/broken')} » répond par une erreur (HTTP 500)."
    )


async def test_redirects_are_followed_by_hand(server: Server) -> None:
    assert await launch_check(server, "/moved") == f"ok: « {server.url('/moved')} » répond (HTTP 200)."
    assert server.seen.paths == ["/moved", "/launch?from=moved"]


async def test_a_redirect_loop_stops_after_the_allowed_hops(server: Server) -> None:
    assert await launch_check(server, "/loop") == "failed: Plus de 3 redirections à la suite."
    assert server.seen.paths == ["/loop"] * 4  # the first request and three redirects


async def test_each_redirect_hop_is_checked_again(server: Server) -> None:
    detail = await launch_check(server, "/sneaky")
    assert detail.startswith("failed: ")
    assert "identifiant ou un mot de passe" in detail
    detail = await launch_check(server, "/away")
    assert "n’est pas en HTTPS" in detail
    assert server.seen.paths == ["/sneaky", "/away"]  # the redirect targets were never fetched


async def test_a_launch_url_that_does_not_answer_in_time_fails(server: Server) -> None:
    detail = await launch_check(server, "/slow", timeout_s=0.5)
    assert detail == f"failed: « {server.url('/slow')} » n’a pas répondu dans les 0.5 secondes."


async def test_a_closed_port_fails(server: Server) -> None:
    # a bound socket that does not listen: connecting to it is refused
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        client = await app(server, "/launch")
        closed = Client.from_json({**client.to_json(), "launch_url": f"http://127.0.0.1:{port}/launch"})
        launch = (
            await Prober(allow_private=True, timeout_s=2.0).probe(ProbeTarget(LOOPBACK, SCOPE, closed))
        )[3]
    assert not launch.ok
    assert (
        launch.detail == f"« http://127.0.0.1:{port}/launch » est injoignable : la connexion est impossible."
    )


async def test_the_connection_goes_to_the_checked_address_under_the_urls_name(server: Server) -> None:
    """The backend resolves ``localhost`` itself and connects to the address it resolved; the
    request still names the URL's host (``Host``), as TLS would (SNI)."""
    prober = Prober(allow_private=True)
    assert await prober.fetch_status(server.url("/launch", host="localhost")) == 200
    assert await prober.fetch_status(server.url("/elsewhere")) == 200
    assert server.seen.requests == [
        ("/launch", f"localhost:{server.port}"),
        ("/elsewhere", f"127.0.0.1:{server.port}"),
        ("/launch", f"localhost:{server.port}"),
    ]


# --------------------------------------------------------------------------- the guard, on
async def test_without_the_test_flag_a_loopback_launch_url_is_refused_unfetched(server: Server) -> None:
    prober = Prober()
    checks = await prober.probe(ProbeTarget(LOOPBACK, SCOPE, await app(server, "/launch")))
    redirect_uris, launch = checks[1], checks[3]
    assert not redirect_uris.ok
    assert "n’est pas en HTTPS" in redirect_uris.detail
    assert not launch.ok
    assert launch.detail == f"L’adresse « {server.url('/launch')} » n’est pas en HTTPS."
    for url in (
        server.url("/launch"),
        f"https://127.0.0.1:{server.port}/launch",
        f"https://[::ffff:127.0.0.1]:{server.port}/launch",
        f"https://localhost:{server.port}/launch",
    ):
        with pytest.raises(ProbeRefused):
            await prober.fetch_status(url)
    assert server.seen.requests == []


async def test_the_backend_refuses_to_connect_to_a_name_that_resolves_to_the_loopback(server: Server) -> None:
    """Below the URL rules, the connection itself: ``localhost`` is resolved, found private and
    never connected to; literal loopback forms likewise."""
    backend = GuardedBackend()
    for host in ("localhost", "127.0.0.1", "::ffff:127.0.0.1", "[::1]"):
        with pytest.raises(ProbeRefused) as refused:
            await backend.connect_tcp(host, server.port, timeout=2.0)
        assert "adresse privée, locale ou réservée" in str(refused.value)
    assert "« localhost » se résout en" in str(await _refusal(backend, "localhost", server.port))
    assert server.seen.requests == []
    # the same backend with the test flag connects (and the server accepts the connection)
    stream = await GuardedBackend(allow_private=True).connect_tcp("localhost", server.port, timeout=2.0)
    await stream.aclose()


async def _refusal(backend: GuardedBackend, host: str, port: int) -> ProbeRefused:
    try:
        await backend.connect_tcp(host, port, timeout=2.0)
    except ProbeRefused as exc:
        return exc
    raise AssertionError(f"{host} was not refused")
