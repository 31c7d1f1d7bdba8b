"""Executable checks ("probes") of a listed app's technical commitments, behind an address guard.

A listed app commits to a few things the platform can verify by itself, so the catalogue does not
take the publisher's word for them. :meth:`Prober.probe` runs five checks, always in this order:

* ``registration`` — its SMART registration exists and is active; a public client has redirect
  URIs; a ``private_key_jwt`` client's JWKS imports and holds at least one *public* signing key the
  token endpoint accepts (RSA or EC P-256/P-384, not reserved for encryption, no private part);
  its scopes follow the SMART grammar.
* ``redirect_uris`` — every redirect URI passes :func:`uri_problem` (HTTPS, no fragment nor
  credentials, on a host the publisher declared, not a private or local address) and its host
  resolves, now, to public addresses only.
* ``scopes`` — the registered scopes ask for nothing beyond the scopes the app's record declares
  (``ScopeSet.narrow`` by the declared set must keep every registered scope whole); the extra
  ones are named.
* ``launch_url`` — the launch URL passes the same rules and answers: a GET, redirects followed by
  hand (each hop re-checked), must end in a 2xx or 3xx answer.
* ``conformance`` — a sample of what the app wrote passes the structural validation every write
  passes (``fhir/validation``), and a vital-signs Observation carries what the vital-signs profile
  asks (a LOINC code, a UCUM quantity or components with them, a subject, an effective time).

An app without data exchange (no SMART registration) passes the first four checks trivially.
Declaring the downgrade of an app whose checks lapse is the catalogue's job (``service.py``),
not this module's: a probe only reports.

**The address guard.** The probes fetch URLs a publisher typed, so they are a server-side request
forgery vector: a launch URL (or one of its redirects) on ``169.254.169.254``, ``127.0.0.1`` or
an intranet name would make the platform reach what only it can reach. Hence:

* :func:`uri_problem` refuses, without DNS (forms call it synchronously), a URL that is not HTTPS,
  has credentials or a fragment, names a literal non-public IP (v4 or v6, IPv4-mapped, 6to4 and
  NAT64 forms included), an IPv4 in a non-canonical form (``127.1``, ``0x7f.1``, ``2130706433``)
  or a local name (``localhost``, ``*.localhost``, ``*.local``, ``*.internal``,
  ``*.localdomain``, ``*.home.arpa``, single-label names).
* At fetch time the connection goes through :class:`GuardedBackend`, an httpcore network backend:
  it resolves the name once, refuses when *any* of its addresses is not public
  (:func:`public_address`), and connects to the address it checked. The connection is therefore
  **pinned** to the checked address: a DNS rebinding (a first answer public, the next private)
  cannot slip between the check and the connect, because there is no second resolution. TLS still
  verifies the certificate against the name (SNI and ``Host`` come from the URL), and environment
  proxies are ignored (a proxy would connect on our behalf, past the guard).
* Redirects are never followed by httpx: each ``Location`` is re-checked by :func:`uri_problem`
  and its connection again by the backend; at most ``max_redirects`` hops.

Residual risk: the ``redirect_uris`` check only resolves the names (the platform never connects to
a redirect URI — browsers do), so it says what the DNS answered at probe time, not what it will
answer to a browser later.

``allow_private`` lifts the guard (plain HTTP, private and loopback addresses) and exists **for
tests only**, which talk to a loopback server. The catalogue reads it from the setting
``HYGIE_STORE_PROBE_ALLOW_PRIVATE``, which defaults off; a deployment never sets it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urldefrag, urljoin, urlsplit

import httpcore
import httpx

from hygie.auth.clients import ASSERTION_ALGORITHMS, Client, import_jwks
from hygie.auth.scopes import InvalidScope, ResourceScope, ScopeSet, parse_scopes
from hygie.domain.ens.vitals import LOINC, OBSERVATION_CATEGORY, UCUM, VITAL_SIGNS_PROFILE
from hygie.fhir.validation import validate_resource

__all__ = [
    "CHECKS",
    "Check",
    "GuardedBackend",
    "ProbeError",
    "ProbeFailed",
    "ProbeRefused",
    "ProbeTarget",
    "Prober",
    "public_address",
    "uri_problem",
]

# the five checks, in the order a probe reports them, with their labels
CHECKS: Final[dict[str, str]] = {
    "registration": "Enregistrement SMART valide",
    "redirect_uris": "Adresses de redirection en HTTPS sur les hôtes déclarés",
    "scopes": "Portées limitées à celles déclarées",
    "launch_url": "Adresse de lancement joignable",
    "conformance": "Données écrites conformes aux profils",
}
USER_AGENT: Final = "Hygie-Store-Probe/1"
# how many failures the conformance check names (the rest are counted)
_SHOWN_FAILURES: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# names that only ever mean a machine of the local network (RFC 6761, 6762, 8375; common usage)
_LOCAL_SUFFIXES: Final = ("localhost", "local", "internal", "localdomain", "home.arpa")
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# characters a URL must not carry raw: parsers disagree on them (``\`` is ``/`` to browsers)
_FORBIDDEN: Final = re.compile(r"[\x00-\x20\x7f\\]")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_SIGNING_CURVES: Final = frozenset({"P-256", "P-384"})


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome: ``detail`` says in plain French what was found and why it fails."""

    code: str  # one of CHECKS
    label: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Check:
        return cls(
            code=str(data["code"]), label=str(data["label"]), ok=bool(data["ok"]), detail=str(data["detail"])
        )


def _check(code: str, ok: bool, detail: str) -> Check:
    return Check(code, CHECKS[code], ok, detail)


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What is probed of one listed app."""

    declared_hosts: tuple[str, ...]  # hosts the publisher declared ("app.example.fr")
    declared_scopes: str  # the scopes the app's record declares
    client: Client | None  # its SMART registration (None: the app exchanges no data)
    written: tuple[dict[str, Any], ...] = ()  # a sample of resources it wrote recently


class ProbeError(Exception):
    """A fetch the probe could not make; the message is French, for the publisher."""


class ProbeRefused(ProbeError):
    """The guard refused the address: no connection was made."""


class ProbeFailed(ProbeError):
    """The address was allowed but the fetch failed (network error, timeout, too many redirects)."""


# --------------------------------------------------------------------------- the address guard
def public_address(ip: str) -> bool:
    """Whether an IP address (v4 or v6, brackets and zone allowed) is a public unicast address.

    IPv4-mapped (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``) addresses
    are judged by the IPv4 address they carry; Teredo and site-local IPv6 are never public.
    """
    try:
        address = ipaddress.ip_address(ip.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return _public(address)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        if address in _NAT64:
            return _public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return _public(address.sixtofour)
        if address.teredo is not None or address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _normal_host(host: str) -> str:
    """A host as compared: lower case, no trailing dot, IDNA (punycode) when it is Unicode."""
    host = host.strip().lower().removesuffix(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _loopback_host(host: str) -> bool:
    """Whether a (normalised) host names this machine: ``localhost`` or a loopback address."""
    literal = _ip_literal(host.removeprefix("[").removesuffix("]"))
    return host == "localhost" if literal is None else literal.is_loopback


def _host_problem(host: str, *, allow_private: bool) -> str | None:
    """Why a host (from a URL, normalised) may not be reached, without DNS; None when it may."""
    literal = _ip_literal(host)
    if literal is not None:
        if not allow_private and not _public(literal):
            return f"L’hôte « {host} » est une adresse IP privée, locale ou réservée."
        return None
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # what browsers read as an IPv4 address (127.1, 0x7f.0.0.1, 2130706433): never a domain
        return f"L’hôte « {host} » est une adresse IP sous une forme non standard."
    if not all(_LABEL.fullmatch(label) for label in labels) or len(host) > 253:
        return f"L’hôte « {host} » n’est pas un nom de domaine valide."
    if not allow_private and (
        len(labels) == 1 or any(host == s or host.endswith("." + s) for s in _LOCAL_SUFFIXES)
    ):
        return f"L’hôte « {host} » est un nom du réseau local, pas une adresse publique."
    return None


def uri_problem(uri: str, declared_hosts: Sequence[str] = (), *, allow_private: bool = False) -> str | None:
    """Why a redirect or launch URI is refused (a French sentence), or None when it is acceptable.

    No DNS here: forms call it synchronously. Refused: a scheme other than ``https`` (plain
    ``http`` too, even on the loopback), a fragment, credentials, a host that is a literal
    non-public IP or a local name, and — when ``declared_hosts`` is given — a host that is not
    exactly one of them (case-insensitive). ``allow_private`` (tests only) lifts the address and
    scheme rules for this machine alone (``localhost``, a loopback address), where test apps run:
    plain ``http`` elsewhere, or a private address, stays refused.
    """
    if _FORBIDDEN.search(uri):
        return f"L’adresse « {uri} » contient des espaces, des caractères de contrôle ou une barre oblique inverse."
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return f"L’adresse « {uri} » est illisible."
    relax = allow_private and _loopback_host(_normal_host(hostname or ""))
    schemes = ("https", "http") if relax else ("https",)
    if parts.scheme.lower() not in schemes:
        return f"L’adresse « {uri} » n’est pas en HTTPS."
    if "#" in uri:
        return f"L’adresse « {uri} » contient un fragment (#…), interdit dans une adresse de redirection."
    if parts.username is not None or parts.password is not None:
        return f"L’adresse « {uri} » contient un identifiant ou un mot de passe."
    if not hostname:
        return f"L’adresse « {uri} » n’indique pas d’hôte."
    host = _normal_host(hostname)
    problem = _host_problem(host, allow_private=relax)
    if problem is not None:
        return problem
    if declared_hosts and host not in {_normal_host(h) for h in declared_hosts}:
        return (
            f"L’hôte « {host} » ne fait pas partie des hôtes déclarés par l’éditeur "
            f"({', '.join(declared_hosts)})."
        )
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to public addresses, to the one it checked.

    :meth:`resolve` resolves a name once and refuses it when any of its addresses is not public;
    :meth:`connect_tcp` then connects to those very addresses (an IP literal to the inner backend:
    no second resolution), so a DNS rebinding cannot change the address between check and connect.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout_s: float = 5.0,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, every one public (unless ``allow_private``).

        Raises :class:`ProbeRefused` when one is not, :class:`ProbeFailed` when the name does not
        resolve (in time)."""
        host = host.removeprefix("[").removesuffix("]")
        literal = _ip_literal(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                async with asyncio.timeout(self.timeout_s):
                    infos = await asyncio.get_running_loop().getaddrinfo(
                        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                    )
            except TimeoutError as exc:
                raise ProbeFailed(f"Le nom « {host} » ne s’est pas résolu à temps.") from exc
            except OSError as exc:
                raise ProbeFailed(f"Le nom « {host} » ne se résout pas.") from exc
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            if not addresses:
                raise ProbeFailed(f"Le nom « {host} » ne se résout pas.")
        if not self.allow_private:
            for address in addresses:
                if not public_address(address):
                    what = "est" if literal is not None else f"se résout en {address}, qui est"
                    raise ProbeRefused(
                        f"L’hôte « {host} » {what} une adresse privée, locale ou réservée : "
                        "la plateforme ne s’y connecte pas."
                    )
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in await self.resolve(host, port):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ProbeRefused("La plateforme ne se connecte pas à un socket local.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's errors as httpx's, most specific first (the transport must speak httpx)
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (Exception, httpx.TransportError),  # any other httpcore error
)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class _GuardedTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore pool whose connections all go through a :class:`GuardedBackend`."""

    def __init__(self, backend: GuardedBackend) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=4,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core)
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as exc:
            raise next(t for s, t in _ERRORS if isinstance(exc, s))(str(exc), request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


# --------------------------------------------------------------------------- the probes
class Prober:
    """Runs the five checks of a listed app; ``allow_private`` is for tests only (module doc)."""

    def __init__(
        self, *, allow_private: bool = False, timeout_s: float = 5.0, max_redirects: int = 3
    ) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.backend = GuardedBackend(allow_private=allow_private, timeout_s=timeout_s)

    async def probe(self, target: ProbeTarget) -> list[Check]:
        """The five checks of ``target``, in the order of :data:`CHECKS`."""
        return [
            _registration(target.client),
            await self._redirect_uris(target),
            _scopes(target),
            await self._launch_url(target),
            _conformance(target.written),
        ]

    # ---------------------------------------------------------------- fetching through the guard
    async def fetch_status(self, url: str) -> int:
        """The HTTP status of a GET on ``url``, redirects followed by hand, each hop re-checked.

        Raises :class:`ProbeRefused` when the guard refuses a hop (before any connection to it),
        :class:`ProbeFailed` on a network error, a timeout or more than ``max_redirects`` hops.
        """
        async with httpx.AsyncClient(
            transport=_GuardedTransport(self.backend),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.timeout_s),
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*;q=0.5"},
        ) as client:
            hops = 0
            while True:
                url = urldefrag(url).url
                problem = uri_problem(url, allow_private=self.allow_private)
                if problem is not None:
                    raise ProbeRefused(problem)
                status, location = await self._get(client, url)
                if status not in _REDIRECTS or location is None:
                    return status
                hops += 1
                if hops > self.max_redirects:
                    raise ProbeFailed(f"Plus de {self.max_redirects} redirections à la suite.")
                url = urljoin(url, location)

    async def _get(self, client: httpx.AsyncClient, url: str) -> tuple[int, str | None]:
        """One GET: the status and the Location header (the body is not read)."""
        try:
            # one deadline for the whole hop: a server that drips its headers does not hold us
            async with asyncio.timeout(self.timeout_s):
                response = await client.send(client.build_request("GET", url), stream=True)
                await response.aclose()
        except ProbeError:
            raise
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ProbeFailed(f"« {url} » n’a pas répondu dans les {self.timeout_s:g} secondes.") from exc
        except httpx.HTTPError as exc:
            raise ProbeFailed(f"« {url} » est injoignable : {_network_failure(exc)}.") from exc
        return response.status_code, response.headers.get("location")

    # ---------------------------------------------------------------- the network checks
    async def _redirect_uris(self, target: ProbeTarget) -> Check:
        client = target.client
        if client is None:
            return _check("redirect_uris", True, "aucune : l’application n’échange pas de données")
        if not client.redirect_uris:
            return _check("redirect_uris", True, "aucune adresse de redirection enregistrée")
        if not target.declared_hosts:
            return _check(
                "redirect_uris",
                False,
                "l’éditeur n’a déclaré aucun hôte : les adresses ne peuvent être vérifiées",
            )
        problems = [
            p for uri in client.redirect_uris if (p := await self._address_problem(uri, target)) is not None
        ]
        if problems:
            return _check("redirect_uris", False, " ".join(problems))
        count = len(client.redirect_uris)
        return _check(
            "redirect_uris",
            True,
            f"{count} adresse{'s' if count > 1 else ''} en HTTPS sur les hôtes déclarés, "
            "résolue" + ("s" if count > 1 else "") + " en adresses publiques",
        )

    async def _address_problem(self, uri: str, target: ProbeTarget) -> str | None:
        """:func:`uri_problem`, then the resolution of its host to public addresses only."""
        problem = uri_problem(uri, target.declared_hosts, allow_private=self.allow_private)
        if problem is not None:
            return problem
        parts = urlsplit(uri)
        assert parts.hostname is not None  # uri_problem checked it
        try:
            await self.backend.resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except ProbeError as exc:
            return str(exc)
        return None

    async def _launch_url(self, target: ProbeTarget) -> Check:
        client = target.client
        url = client.launch_url if client is not None else None
        if url is None:
            return _check("launch_url", True, "pas d’adresse de lancement déclarée")
        if not target.declared_hosts:
            return _check(
                "launch_url", False, "l’éditeur n’a déclaré aucun hôte : l’adresse ne peut être vérifiée"
            )
        problem = uri_problem(url, target.declared_hosts, allow_private=self.allow_private)
        if problem is not None:
            return _check("launch_url", False, problem)
        try:
            status = await self.fetch_status(url)
        except ProbeError as exc:
            return _check("launch_url", False, str(exc))
        if status >= 400:
            return _check("launch_url", False, f"« {url} » répond par une erreur (HTTP {status}).")
        return _check("launch_url", True, f"« {url} » répond (HTTP {status}).")


def _network_failure(exc: httpx.HTTPError) -> str:
    """A network error in plain French."""
    if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(exc.__cause__, ssl.SSLError):
        return "son certificat TLS n’est pas valide"
    if isinstance(exc, httpx.ConnectError):
        return "la connexion est impossible"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "la connexion a été interrompue"
    if isinstance(exc, httpx.ProtocolError):
        return "sa réponse n’est pas du HTTP valide"
    return "erreur réseau"


# --------------------------------------------------------------------------- the offline checks
def _registration(client: Client | None) -> Check:
    if client is None:
        return _check(
            "registration", True, "aucun enregistrement attendu : l’application n’échange pas de données"
        )
    problems: list[str] = []
    if client.status != "active":
        problems.append("l’enregistrement est suspendu")
    if client.public and not client.redirect_uris:
        problems.append("un client public doit avoir au moins une adresse de redirection")
    if client.auth_method == "private_key_jwt":
        problems.extend(_jwks_problems(client.jwks))
    try:
        parse_scopes(client.scope)
    except InvalidScope as exc:
        problems.append(f"ses portées ne suivent pas la grammaire SMART ({exc})")
    if problems:
        return _check("registration", False, " ; ".join(problems))
    kind = {
        "none": "client public (PKCE)",
        "client_secret_basic": "client confidentiel à secret",
        "client_secret_post": "client confidentiel à secret",
        "private_key_jwt": "client confidentiel à clé (private_key_jwt)",
    }[client.auth_method]
    return _check("registration", True, f"enregistrement actif, {kind}")


def _jwks_problems(jwks: dict[str, Any] | None) -> list[str]:
    """Why a ``private_key_jwt`` client's JWKS cannot verify its client assertions."""
    if jwks is None:
        return ["un client private_key_jwt doit publier ses clés (JWKS)"]
    try:
        keys = import_jwks(jwks)
    except ValueError as exc:
        return [f"son jeu de clés (JWKS) est illisible ({exc})"]
    problems: list[str] = []
    if any(key.is_private for key in keys.keys):
        problems.append(
            "son jeu de clés (JWKS) contient une clé privée ou secrète, qui ne doit jamais être publiée"
        )
    if not any(_signing_key(key) for key in keys.keys):
        problems.append(
            "son jeu de clés (JWKS) n’a aucune clé publique de signature utilisable "
            f"({', '.join(ASSERTION_ALGORITHMS)})"
        )
    return problems


def _signing_key(key: Any) -> bool:
    """A public key that can verify an assertion the token endpoint accepts."""
    if key.is_private or key.get("use") not in (None, "sig"):
        return False
    operations = key.get("key_ops")
    if operations is not None and "verify" not in operations:
        return False
    algorithm = key.get("alg")
    if algorithm is not None and algorithm not in ASSERTION_ALGORITHMS:
        return False
    return bool(key.key_type == "RSA" or (key.key_type == "EC" and key.get("crv") in _SIGNING_CURVES))


def _scopes(target: ProbeTarget) -> Check:
    client = target.client
    if client is None:
        return _check("scopes", True, "aucune portée : l’application n’échange pas de données")
    try:
        registered = parse_scopes(client.scope)
    except InvalidScope as exc:
        return _check("scopes", False, f"les portées enregistrées sont illisibles ({exc})")
    try:
        declared = parse_scopes(target.declared_scopes)
    except InvalidScope as exc:
        return _check("scopes", False, f"les portées déclarées sont illisibles ({exc})")
    extra = _beyond(registered, declared)
    if extra:
        return _check("scopes", False, f"portées enregistrées au-delà de la déclaration : {', '.join(extra)}")
    return _check("scopes", True, "les portées enregistrées sont toutes déclarées")


def _beyond(registered: ScopeSet, declared: ScopeSet) -> list[str]:
    """The registered scopes (or their permissions) that the declared set does not cover.

    ``registered.narrow(declared)`` keeps what the declaration covers; a registered scope is
    whole when the kept parts of its very shape (context, type, query) give back all its letters.
    """
    kept = registered.narrow(declared)
    extra: list[str] = []
    for scope in registered.resources:
        covered: set[str] = set()
        for part in kept.resources:
            if _shape(part) == _shape(scope):
                covered |= part.permissions
        missing = "".join(p for p in "cruds" if p in scope.permissions and p not in covered)
        if missing == "".join(p for p in "cruds" if p in scope.permissions):
            extra.append(scope.text)
        elif missing:
            extra.append(f"{scope.text} (permissions « {missing} »)")
    extra.extend(sorted(registered.others - kept.others))
    return extra


def _shape(scope: ResourceScope) -> tuple[str, str, frozenset[tuple[str, str]]]:
    return scope.context, scope.resource_type, frozenset(scope.restrictions)


def _conformance(written: Sequence[Mapping[str, Any]]) -> Check:
    if not written:
        return _check("conformance", True, "aucune ressource écrite par l’application n’a été échantillonnée")
    failures: list[str] = []
    for resource in written:
        failures.extend(_resource_failures(resource))
    count = len(written)
    if failures:
        shown = " ; ".join(failures[:_SHOWN_FAILURES])
        more = len(failures) - _SHOWN_FAILURES
        tail = (
            f" ; et {more} autre{'s' if more > 1 else ''} écart{'s' if more > 1 else ''}" if more > 0 else ""
        )
        return _check("conformance", False, f"{shown}{tail}")
    return _check(
        "conformance",
        True,
        f"{count} ressource{'s' if count > 1 else ''} échantillonnée{'s' if count > 1 else ''}, "
        f"toute{'s' if count > 1 else ''} conforme{'s' if count > 1 else ''}",
    )


def _resource_failures(resource: Mapping[str, Any]) -> list[str]:
    """What is wrong with one written resource: ``Type/id : path — why``."""
    kind = resource.get("resourceType")
    name = f"{kind}/{resource.get('id')}" if resource.get("id") else f"{kind or 'Ressource'} (sans id)"
    failures = [
        f"{name} : {issue.expression or kind} — {issue.diagnostics}"
        for issue in validate_resource(dict(resource))
        if issue.severity in ("error", "fatal")
    ]
    if kind == "Observation" and _vital_sign(resource):
        failures.extend(f"{name} : {path} — {why}" for path, why in _vital_sign_failures(resource))
    return failures


def _vital_sign(observation: Mapping[str, Any]) -> bool:
    profiles = (observation.get("meta") or {}).get("profile") or ()
    if isinstance(profiles, list) and VITAL_SIGNS_PROFILE in profiles:
        return True
    return any(
        isinstance(coding, dict)
        and coding.get("system") == OBSERVATION_CATEGORY
        and coding.get("code") == "vital-signs"
        for category in _list(observation.get("category"))
        if isinstance(category, dict)
        for coding in _list(category.get("coding"))
    )


def _vital_sign_failures(observation: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the vital-signs profile asks that the structural validation does not check."""
    failures: list[tuple[str, str]] = []
    if not _loinc(observation.get("code")):
        failures.append(("Observation.code", "une mesure vitale doit être codée en LOINC"))
    subject = observation.get("subject")
    if not isinstance(subject, dict) or not (subject.get("reference") or subject.get("identifier")):
        failures.append(("Observation.subject", "une mesure vitale doit désigner son patient"))
    if not (observation.get("effectiveDateTime") or observation.get("effectivePeriod")):
        failures.append(("Observation.effective[x]", "une mesure vitale doit être datée"))
    others = [k for k in observation if k.startswith("value") and k != "valueQuantity"]
    components = _list(observation.get("component"))
    if others:
        failures.append((f"Observation.{others[0]}", "la valeur d’une mesure vitale est une quantité UCUM"))
    elif "valueQuantity" in observation:
        why = _quantity_problem(observation["valueQuantity"])
        if why is not None:
            failures.append(("Observation.valueQuantity", why))
    elif components:
        for i, component in enumerate(components):
            where = f"Observation.component[{i}]"
            if not isinstance(component, dict):
                continue  # the structural validation reported it
            if not _loinc(component.get("code")):
                failures.append((f"{where}.code", "chaque composant doit être codé en LOINC"))
            if "valueQuantity" in component:
                why = _quantity_problem(component["valueQuantity"])
                if why is not None:
                    failures.append((f"{where}.valueQuantity", why))
            elif "dataAbsentReason" not in component:
                failures.append((f"{where}.value[x]", "chaque composant doit porter une quantité UCUM"))
    elif "dataAbsentReason" not in observation and not observation.get("hasMember"):
        failures.append(
            ("Observation.value[x]", "une mesure vitale doit porter une quantité UCUM ou des composants")
        )
    return failures


def _loinc(concept: Any) -> bool:
    return isinstance(concept, dict) and any(
        isinstance(coding, dict) and coding.get("system") == LOINC and bool(coding.get("code"))
        for coding in _list(concept.get("coding"))
    )


def _quantity_problem(quantity: Any) -> str | None:
    if not isinstance(quantity, dict):
        return "quantité illisible"
    if not isinstance(quantity.get("value"), int | float) or isinstance(quantity.get("value"), bool):
        return "la quantité n’a pas de valeur numérique"
    if quantity.get("system") != UCUM or not quantity.get("code"):
        return f"l’unité « {quantity.get('unit') or quantity.get('code') or '?'} » n’est pas codée en UCUM"
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
