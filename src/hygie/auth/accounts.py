"""User accounts of the trust core: creation, login with lockout and rate limits, TOTP second
factor, federated identities, password reset by e-mail link, and what the account holder manages
themselves (change of password, second factor on and off, federated identities, recent sign-ins).

Framework-free: the web layer calls :class:`AccountService` and turns its answers into pages.
Everything is stored through the :class:`~hygie.ports.KeyValueStore` port:

=======================  =====================================================================
kind                     key → value
=======================  =====================================================================
``account``              account id → the :class:`Account`
``account-login``        normalised login → ``{"id"}`` (``add``: a login is taken once)
``account-federated``    JSON ``[issuer, subject]`` → ``{"id"}`` (``add``: one account each)
``auth-failure``         ``login-key#n`` (n = 1…5) → one failed (or running) attempt
``auth-rate-ip``         ``ip#window#n`` → one attempt from that address in that window
``auth-rate-login``      ``login-key#window#n`` → one attempt on that login in that window
``auth-mfa-pending``     account id → password checked, second factor awaited
``auth-totp-step``       account id → ``{"step"}``, the last TOTP step used
``auth-totp-used``       ``account id#step`` → that step was used (``add``: used once)
``password-reset``       SHA-256 of the link token → ``{"account", "expires", "pw"}``
``password-reset-wait``  account id → a reset mail was sent less than a minute ago
``auth-totp-enrol``      account id → ``{"secret", "until"}``, a second factor being turned on
``account-sessions``     account id → ``{"generation"}``: browser sessions of another one ended
``account-sign-ins``     account id → ``{"entries"}``, the last ten sign-ins (date and method)
=======================  =====================================================================

Self-service (the citizen's "Connexion et sécurité" page, ``web/ens/account.py``). Every change
checks what the holder must prove first — the current password, a current code — against the
same failure slots as sign-in (a stolen session cannot guess the password forever), then writes
the account in one ``put``; nothing is written when a check fails. A change of password ends
every other browser session of the account: the account's session *generation* is replaced, and
the sign-in pages (``web/oauth.py``) drop a session made under another one. Each change is told
to the person by e-mail through the outbox, without any secret in it (the login is the address,
as for reset links). A second factor is turned on only once a code from the new secret is typed
(the secret waits server-side meanwhile, and the code's step is marked used as at sign-in), and
turned off only with the password and a current code. A federated identity the person removes is
remembered as refused (``Account.refused_federated``), so the linking rules of
``auth/federation.py`` do not link it again by the identity pivot until the person allows it.

Counting without a compare-and-swap. The store has no atomic increment, only ``add`` (insert if
absent). A counter of at most N is therefore N *slots*: an attempt must claim a free slot with
``add`` *before* the password is checked, so a burst of parallel guesses cannot all read "4
failures so far" and all be tried: the sixth finds no slot and is refused. A failure keeps its
slot; a success frees them all. The rate limits use the same slots, numbered per time window.

Every record that expires also keeps its end (``until``/``expires``) in its value and is judged
by this service's clock, so tests can move time forward; the store's own expiry only purges.
That clock must not run behind the store's (both are the system clock in production).

No user enumeration: an unknown login is hashed against a dummy hash (same time), counts
failures and locks exactly like a real one, and answers the same :class:`LoginResult`; a reset
request for an unknown login returns the same nothing. ``login-key`` is a SHA-256 of the
normalised login, so attacker-typed logins (sometimes a password typed in the wrong field) are
not stored in clear.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ipaddress
import json
import logging
import math
import secrets
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from hygie.auth import totp as otp
from hygie.auth.passwords import (
    check_password_policy,
    dummy_verify,
    hash_password,
    needs_rehash,
    verify_password,
)
from hygie.domain.outbox import Outbox
from hygie.ports import KeyValueStore


def now_us() -> int:
    """Microseconds since the epoch (UTC): the default clock."""
    return time.time_ns() // 1000


__all__ = [
    "MAX_FAILURES",
    "SIGN_IN_METHODS",
    "Account",
    "AccountError",
    "AccountService",
    "DuplicateLogin",
    "FederatedIdentityTaken",
    "InvalidAccountData",
    "InvalidCode",
    "InvalidResetLink",
    "LastSignInMethod",
    "LoginResult",
    "LoginStatus",
    "PasswordRejected",
    "SignIn",
    "TooManyAttempts",
    "TotpEnrolment",
    "UnknownAccount",
    "WrongPassword",
    "normalise_login",
    "session_generation",
]

log = logging.getLogger("hygie.auth")

AccountKind = Literal["citizen", "professional", "operator", "publisher", "authority"]
AccountStatus = Literal["active", "disabled"]
# publishers (the app store's editors) and authorities (who review and watch the store's apps)
# sign in like everyone; what they may do is the store's business (``store/service.py``)
KINDS: frozenset[str] = frozenset({"citizen", "professional", "operator", "publisher", "authority"})

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US

MAX_FAILURES = 5  # consecutive failures before the lock
LOCKOUT_US = 15 * MINUTE_US
IP_LIMIT = 20  # attempts per client address (IPv6: per /64) per window
IP_WINDOW_US = 5 * MINUTE_US
LOGIN_LIMIT = 10  # attempts per login per window, whatever their outcome
LOGIN_WINDOW_US = 15 * MINUTE_US
MAX_DELAY_S = 8.0
MFA_PENDING_US = 5 * MINUTE_US  # time to type the code after the password
RESET_TTL_US = 30 * MINUTE_US
RESET_COOLDOWN_US = 1 * MINUTE_US  # at most one reset mail a minute per account
MAX_LOGIN_LENGTH = 254  # an e-mail address's maximum (RFC 5321)
MAX_TOKEN_LENGTH = 128
TOTP_ENROL_US = 15 * MINUTE_US  # time to scan the QR code and type a first code
SIGN_INS_KEPT = 10

K_ACCOUNT = "account"
K_LOGIN = "account-login"
K_FEDERATED = "account-federated"
K_FAILURE = "auth-failure"
K_RATE_IP = "auth-rate-ip"
K_RATE_LOGIN = "auth-rate-login"
K_MFA_PENDING = "auth-mfa-pending"
K_TOTP_STEP = "auth-totp-step"
K_TOTP_USED = "auth-totp-used"
K_RESET = "password-reset"
K_RESET_WAIT = "password-reset-wait"
K_TOTP_ENROL = "auth-totp-enrol"
K_SESSIONS = "account-sessions"
K_SIGN_INS = "account-sign-ins"

# how a person signed in, as the recent sign-ins name it
SIGN_IN_METHODS = {
    "pwd": "Mot de passe",
    "pwd+otp": "Mot de passe et code de vérification",
    "fed": "Service d’identification",
}

MSG_INVALID = "Identifiant ou mot de passe incorrect."
MSG_INVALID_CODE = "Code de vérification incorrect."
MSG_MFA_EXPIRED = "La vérification a expiré : reconnectez-vous avec votre mot de passe."
MSG_RATE_LIMITED = "Trop de tentatives de connexion. Réessayez dans quelques minutes."
MSG_SECOND_FACTOR = "Saisissez le code à 6 chiffres de votre application d'authentification."
MSG_OK = "Connexion réussie."
MSG_RESET_INVALID = "Ce lien de réinitialisation n'est plus valable : demandez-en un nouveau."
MSG_WRONG_PASSWORD = "Le mot de passe actuel est incorrect."
MSG_CODE_REFUSED = "Ce code n’est pas valide ou a déjà servi : attendez le suivant et recommencez."
MSG_ENROL_EXPIRED = "Le délai pour activer la double authentification est dépassé : recommencez."
MSG_SAME_PASSWORD = "Choisissez un mot de passe différent du mot de passe actuel."

RESET_SUBJECT = "Hygie : réinitialisation de votre mot de passe"
RESET_BODY = """Bonjour,

Une réinitialisation du mot de passe de votre compte Hygie a été demandée.
Pour choisir un nouveau mot de passe, ouvrez ce lien dans les 30 minutes :

{link}

Ce lien ne sert qu'une fois. Si vous n'êtes pas à l'origine de cette demande, ignorez ce
message : votre mot de passe reste inchangé.

— Hygie
"""

PARIS = ZoneInfo("Europe/Paris")
SECURITY_BODY = """Bonjour,

{what} le {when}.

Si c'est vous, vous n'avez rien à faire.

Si ce n'est pas vous, quelqu'un a peut-être accès à votre compte : réinitialisez votre mot
de passe (lien « Mot de passe oublié ? » de la page de connexion), puis vérifiez la page
« Connexion et sécurité » de votre espace santé.

— Hygie
"""


# -- errors -------------------------------------------------------------------------------------


class AccountError(Exception):
    """A refused account operation; ``messages`` say why, in French, for the user."""

    def __init__(self, messages: str | Sequence[str]) -> None:
        self.messages: tuple[str, ...] = (messages,) if isinstance(messages, str) else tuple(messages)
        super().__init__(" ".join(self.messages))


class InvalidAccountData(AccountError):
    """A malformed login, kind or link (patient / practitioner / federated identity)."""


class DuplicateLogin(AccountError):
    """The login is already an account's."""


class PasswordRejected(AccountError):
    """The password fails the policy (``messages`` lists every rule it breaks)."""


class UnknownAccount(AccountError):
    """No account has this id."""


class FederatedIdentityTaken(AccountError):
    """This (issuer, subject) is already linked to another account."""


class InvalidResetLink(AccountError):
    """The reset link is unknown, expired, already used, or its account changed meanwhile."""


class WrongPassword(AccountError):
    """The current password typed to confirm a change is not the account's."""


class InvalidCode(AccountError):
    """The second-factor code is not valid now, or was already used."""


class TooManyAttempts(AccountError):
    """Too many failed checks in a row: the account is locked for a while (as at sign-in)."""


class LastSignInMethod(AccountError):
    """Removing this would leave the account no way to sign in."""


# -- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    """One account. ``created`` is in microseconds since the epoch (UTC).

    The password hash and the TOTP secret stay out of ``repr`` so that a logged account or a
    traceback does not carry them.
    """

    id: str
    kind: AccountKind
    login: str
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)
    patient_id: str | None
    practitioner_id: str | None
    federated: tuple[tuple[str, str], ...]
    created: int
    status: AccountStatus = "active"
    # RelatedPerson ids this citizen acts as (a parent for a child, an aidant): bound by the
    # identity service, never by the person — the portal offers these spaces after sign-in
    related_ids: tuple[str, ...] = ()
    # federated identities (iss, sub) the holder removed: not linked again automatically
    refused_federated: tuple[tuple[str, str], ...] = ()

    @property
    def has_totp(self) -> bool:
        return self.totp_secret is not None

    @property
    def has_password(self) -> bool:
        """False for an account that signs in only through a provider (no password hash)."""
        return bool(self.password_hash)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "login": self.login,
            "password_hash": self.password_hash,
            "totp_secret": self.totp_secret,
            "patient_id": self.patient_id,
            "practitioner_id": self.practitioner_id,
            "federated": [list(pair) for pair in self.federated],
            "created": self.created,
            "status": self.status,
            "related_ids": list(self.related_ids),
            "refused_federated": [list(pair) for pair in self.refused_federated],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Account:
        return cls(
            id=str(record["id"]),
            kind=cast(AccountKind, record["kind"]),
            login=str(record["login"]),
            password_hash=str(record["password_hash"]),
            totp_secret=record.get("totp_secret"),
            patient_id=record.get("patient_id"),
            practitioner_id=record.get("practitioner_id"),
            federated=tuple((str(i), str(s)) for i, s in record.get("federated", [])),
            created=int(record["created"]),
            status=cast(AccountStatus, record.get("status", "active")),
            related_ids=tuple(str(r) for r in record.get("related_ids", ())),
            refused_federated=tuple((str(i), str(s)) for i, s in record.get("refused_federated", [])),
        )


@dataclass(frozen=True, slots=True)
class SignIn:
    """One sign-in as the holder sees it: when (µs, UTC), how, and through which provider.

    No address is kept: the page would have to show it, and an IP address says where a person
    was."""

    at: int
    method: str  # a key of SIGN_IN_METHODS
    via: str | None = None  # the provider's issuer for a federated sign-in

    @property
    def label(self) -> str:
        return SIGN_IN_METHODS.get(self.method, self.method)


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A second factor being turned on: the secret (to type by hand) and its ``otpauth://`` URI
    (the QR code); ``until`` (µs) is when it lapses if no code confirms it."""

    secret: str = field(repr=False)
    uri: str = field(repr=False)
    until: int


class LoginStatus(enum.StrEnum):
    OK = "ok"  # authenticated
    SECOND_FACTOR = "second_factor"  # password right; call verify_second_factor next
    INVALID = "invalid"  # wrong credentials (or unknown login: the same answer)
    LOCKED = "locked"  # too many consecutive failures: wait retry_after_s
    RATE_LIMITED = "rate_limited"  # too many attempts from this address or on this login


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The answer to a login step.

    ``delay_s`` is how long the caller must wait before answering (0 s, then 1, 2, 4, 8 s as
    failures accumulate): it slows a brute force down without holding any lock here.
    ``account_id`` is set only on success, never on a failure (it would reveal the login exists).
    """

    status: LoginStatus
    message: str
    account_id: str | None = None
    delay_s: float = 0.0
    retry_after_s: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is LoginStatus.OK

    @property
    def needs_second_factor(self) -> bool:
        return self.status is LoginStatus.SECOND_FACTOR


# -- helpers --------------------------------------------------------------------------------------


def normalise_login(login: str) -> str:
    """The stored form of a login: NFKC, trimmed, lower-case. Raises :class:`InvalidAccountData`."""
    normalised = unicodedata.normalize("NFKC", login).strip().lower()
    if not normalised:
        raise InvalidAccountData("L'identifiant est obligatoire.")
    if len(normalised) > MAX_LOGIN_LENGTH:
        raise InvalidAccountData(f"L'identifiant ne doit pas dépasser {MAX_LOGIN_LENGTH} caractères.")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in normalised):
        raise InvalidAccountData("L'identifiant ne doit contenir ni espace ni caractère de contrôle.")
    return normalised


def _lenient_login(login: str) -> str | None:
    try:
        return normalise_login(login)
    except InvalidAccountData:
        return None


def _login_key(login: str) -> str:
    """A fixed-size, non-reversible-at-a-glance key for per-login counters."""
    return hashlib.sha256(login.encode()).hexdigest()[:32]


def _ip_subject(client_ip: str) -> str:
    """The address a rate limit counts: IPv4 as is, IPv6 by /64 (one host owns a whole /64)."""
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return "raw:" + hashlib.sha256(client_ip.encode()).hexdigest()[:32]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _delay_for(failures: int) -> float:
    """0 s for the first failure, then 1, 2, 4… doubling up to ``MAX_DELAY_S``."""
    if failures <= 1:
        return 0.0
    return float(min(MAX_DELAY_S, 2 ** (failures - 2)))


def _seconds(us: int) -> int:
    return max(1, math.ceil(us / SECOND_US))


def _password_fingerprint(password_hash: str) -> str:
    """Ties a reset link to the password it replaces: any later change voids the link."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _system_clock() -> int:
    return now_us()


def _french_moment(us: int) -> str:
    moment = datetime.fromtimestamp(us / SECOND_US, PARIS)
    return moment.strftime("%d/%m/%Y à %H:%M")


async def session_generation(kv: KeyValueStore, account_id: str) -> str | None:
    """The account's current session generation (None until a change ended its sessions): a
    browser session made under another one is over (``web/oauth.py``)."""
    record = await kv.get(K_SESSIONS, account_id)
    return None if record is None else str(record.get("generation") or "") or None


# -- the service ----------------------------------------------------------------------------------


class AccountService:
    """Accounts stored in ``kv``; ``clock`` gives microseconds since the epoch (UTC).

    Password hashing runs in a worker thread (argon2 releases the GIL), so a login does not
    stall the event loop for its ~70 ms.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        clock: Callable[[], int] = _system_clock,
        *,
        outbox: Outbox | None = None,
    ) -> None:
        self.kv = kv
        self.clock = clock
        self.outbox = outbox if outbox is not None else Outbox(kv, clock)

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, account_id: str) -> Account | None:
        record = await self.kv.get(K_ACCOUNT, account_id)
        return None if record is None else Account.from_record(record)

    async def by_login(self, login: str) -> Account | None:
        normalised = _lenient_login(login)
        if normalised is None:
            return None
        index = await self.kv.get(K_LOGIN, normalised)
        if index is None:
            return None
        account = await self.get(str(index["id"]))
        return account if account is not None and account.login == normalised else None

    async def by_federated(self, issuer: str, subject: str) -> Account | None:
        """The account linked to this (issuer, subject), compared exactly (OpenID Connect Core
        §5.7: ``iss`` + ``sub`` is the only stable identifier). Check ``active`` before use."""
        index = await self.kv.get(K_FEDERATED, json.dumps([issuer, subject]))
        return None if index is None else await self.get(str(index["id"]))

    async def _require(self, account_id: str) -> Account:
        account = await self.get(account_id)
        if account is None:
            raise UnknownAccount("Compte inconnu.")
        return account

    async def _save(self, account: Account) -> None:
        await self.kv.put(K_ACCOUNT, account.id, account.to_record())

    # -- creating and changing ------------------------------------------------------------------

    async def create(
        self,
        kind: str,
        login: str,
        password: str,
        *,
        totp: bool = False,
        patient_id: str | None = None,
        practitioner_id: str | None = None,
    ) -> tuple[Account, str | None]:
        """Create an account; return it and, with ``totp``, the ``otpauth://`` URI to enrol.

        Raises :class:`InvalidAccountData` (bad kind/login, a patient link on a non-citizen, a
        practitioner link on a non-professional), :class:`PasswordRejected` (every policy rule
        broken, in French) or :class:`DuplicateLogin`.
        """
        if kind not in KINDS:
            raise InvalidAccountData(
                f"Type de compte inconnu : {kind!r} (citoyen : citizen, "
                "professionnel : professional, opérateur : operator, éditeur : publisher, "
                "autorité : authority)."
            )
        normalised = normalise_login(login)
        if patient_id is not None and kind != "citizen":
            raise InvalidAccountData("Seul un compte citoyen peut être lié à un patient.")
        if practitioner_id is not None and kind != "professional":
            raise InvalidAccountData(
                "Seul un compte professionnel peut être lié à un professionnel de santé."
            )
        problems = check_password_policy(password, normalised)
        if problems:
            raise PasswordRejected(problems)
        if await self.kv.get(K_LOGIN, normalised) is not None:  # fail fast, before hashing
            raise DuplicateLogin("Un compte existe déjà avec cet identifiant.")

        secret = otp.new_secret() if totp else None
        account = Account(
            id=uuid.uuid4().hex,
            kind=cast(AccountKind, kind),
            login=normalised,
            password_hash=await asyncio.to_thread(hash_password, password),
            totp_secret=secret,
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            federated=(),
            created=self.clock(),
        )
        # The account first, then the login claim (atomic): a lost race leaves no reachable
        # half-account, and the loser's record is removed.
        await self._save(account)
        if not await self.kv.add(K_LOGIN, normalised, {"id": account.id}):
            await self.kv.delete(K_ACCOUNT, account.id)
            raise DuplicateLogin("Un compte existe déjà avec cet identifiant.")
        log.info("account %s created (%s)", account.id, kind)
        uri = otp.provisioning_uri(secret, normalised) if secret is not None else None
        return account, uri

    async def link_federated(self, account_id: str, issuer: str, subject: str) -> Account:
        """Link an external identity (an OpenID provider's ``iss`` and ``sub``) to the account.

        Idempotent for the same account; :class:`FederatedIdentityTaken` if another has it.
        """
        if not issuer or not subject:
            raise InvalidAccountData("L'émetteur et l'identifiant fédéré sont obligatoires.")
        account = await self._require(account_id)
        key = json.dumps([issuer, subject])
        claimed = await self.kv.add(K_FEDERATED, key, {"id": account_id})
        if not claimed:
            held = await self.kv.get(K_FEDERATED, key)
            if held is None:  # removed between the two calls: claim it again, atomically
                claimed = await self.kv.add(K_FEDERATED, key, {"id": account_id})
            else:
                claimed = held.get("id") == account_id
        if not claimed:
            raise FederatedIdentityTaken("Cette identité fédérée est déjà liée à un autre compte.")
        if (issuer, subject) not in account.federated:
            account = replace(
                account,
                federated=(*account.federated, (issuer, subject)),
                refused_federated=tuple(p for p in account.refused_federated if p != (issuer, subject)),
            )
            await self._save(account)
        return account

    async def link_related(self, account_id: str, related_id: str) -> Account:
        """Let a citizen act as a RelatedPerson (parent, guardian, aidant) of another patient."""
        account = await self._require(account_id)
        if account.kind != "citizen":
            raise InvalidAccountData("Seul un compte citoyen peut agir pour un proche.")
        if related_id in account.related_ids:
            return account
        linked = replace(account, related_ids=(*account.related_ids, related_id))
        await self._save(linked)
        return linked

    async def set_password(self, account_id: str, new_password: str) -> Account:
        """Replace the password (policy checked); clears the lockout and voids reset links."""
        account = await self._require(account_id)
        problems = check_password_policy(new_password, account.login)
        if problems:
            raise PasswordRejected(problems)
        account = replace(account, password_hash=await asyncio.to_thread(hash_password, new_password))
        await self._save(account)
        await self._clear_failures(_login_key(account.login))
        log.info("account %s: password changed", account.id)
        return account

    async def disable(self, account_id: str) -> Account:
        """Disable the account: its logins and second factors then fail like a wrong password."""
        account = replace(await self._require(account_id), status="disabled")
        await self._save(account)
        await self.kv.delete(K_MFA_PENDING, account_id)
        log.info("account %s disabled", account_id)
        return account

    async def enable(self, account_id: str) -> Account:
        account = replace(await self._require(account_id), status="active")
        await self._save(account)
        log.info("account %s enabled", account_id)
        return account

    # -- what the holder manages themselves ---------------------------------------------------------

    async def _checked(
        self, account: Account, check: Callable[[], Awaitable[bool]], error: AccountError
    ) -> None:
        """Run ``check`` under the sign-in failure slots: a failure counts towards the lockout
        (raises ``error``, or :class:`TooManyAttempts` once locked); a success frees its slot."""
        login_key = _login_key(account.login)
        slot = await self._reserve_attempt(login_key)
        if slot is None:
            raise TooManyAttempts(_locked_message(await self._lock_remaining_s(login_key)))
        keep_slot = False
        try:
            if not await check():
                keep_slot = True
                failed = await self._failed(login_key, error.messages[0])
                if failed.status is LoginStatus.LOCKED:
                    raise TooManyAttempts(failed.message)
                raise error
        finally:
            if not keep_slot:
                await self.kv.delete(K_FAILURE, slot)

    async def _check_password(self, account: Account, password: str) -> None:
        async def matches() -> bool:
            if not account.has_password or not password:
                return False
            return await asyncio.to_thread(verify_password, account.password_hash, password)

        await self._checked(account, matches, WrongPassword(MSG_WRONG_PASSWORD))

    async def _active(self, account_id: str) -> Account:
        account = await self._require(account_id)
        if not account.active:
            raise UnknownAccount("Compte inconnu.")
        return account

    async def _tell(self, account: Account, subject: str, what: str, event: str) -> None:
        """An e-mail about a change of the account's security, without any secret in it."""
        if "@" not in account.login:
            return
        await self.outbox.enqueue(
            "email",
            account.login,
            subject,
            SECURITY_BODY.format(what=what, when=_french_moment(self.clock())),
        )
        log.info("account %s: told of %s by e-mail", account.id, event)

    async def change_password(self, account_id: str, current: str, new_password: str) -> Account:
        """The holder changes their password: the current one first (counted like a sign-in
        failure when wrong), then the policy, and a new one unlike the current.

        Raises :class:`WrongPassword`, :class:`TooManyAttempts` or :class:`PasswordRejected`
        (nothing written). On success every browser session of the account ends (the caller
        opens a new one for the person at hand: :meth:`end_sessions`), reset links die with the
        old hash, and the person is told by e-mail."""
        account = await self._active(account_id)
        await self._check_password(account, current)
        problems = check_password_policy(new_password, account.login)
        if not problems and new_password == current:
            problems = [MSG_SAME_PASSWORD]
        if problems:
            raise PasswordRejected(problems)
        account = replace(account, password_hash=await asyncio.to_thread(hash_password, new_password))
        await self._save(account)
        await self._clear_failures(_login_key(account.login))
        await self.end_sessions(account.id)
        await self._tell(
            account,
            "Hygie : votre mot de passe a été changé",
            "Le mot de passe de votre compte Hygie a été changé",
            "password",
        )
        log.info("account %s: password changed by its holder", account.id)
        return account

    async def end_sessions(self, account_id: str) -> str:
        """End every browser session of the account: a new session generation; sessions made
        under the old one are refused from their next request. Returns the new generation."""
        generation = secrets.token_urlsafe(16)
        await self.kv.put(K_SESSIONS, account_id, {"generation": generation})
        return generation

    async def start_totp(self, account_id: str) -> TotpEnrolment:
        """Begin turning the second factor on: a secret made here, kept 15 minutes until a code
        confirms it (:meth:`confirm_totp`). The same secret is answered while it waits, so a
        reload does not void a QR code already scanned."""
        account = await self._active(account_id)
        if account.has_totp:
            raise InvalidAccountData("La double authentification est déjà activée sur votre compte.")
        waiting = await self.pending_totp(account_id)
        if waiting is not None:
            return waiting
        secret = otp.new_secret()
        until = self.clock() + TOTP_ENROL_US
        await self.kv.put(K_TOTP_ENROL, account_id, {"secret": secret, "until": until}, expires_us=until)
        return TotpEnrolment(secret, otp.provisioning_uri(secret, account.login), until)

    async def pending_totp(self, account_id: str) -> TotpEnrolment | None:
        """The second factor waiting for its first code, if any (and not lapsed)."""
        record = await self.kv.get(K_TOTP_ENROL, account_id)
        account = await self.get(account_id)
        if record is None or account is None or int(record.get("until", 0)) <= self.clock():
            return None
        secret = str(record["secret"])
        return TotpEnrolment(secret, otp.provisioning_uri(secret, account.login), int(record["until"]))

    async def confirm_totp(self, account_id: str, code: str) -> Account:
        """Turn the second factor on with a first code of the waiting secret.

        The code's step is marked used exactly as at sign-in (the same code cannot then sign
        in). Raises :class:`InvalidCode` (the secret keeps waiting) or
        :class:`InvalidAccountData` (nothing waits: lapsed, or already on)."""
        account = await self._active(account_id)
        if account.has_totp:
            raise InvalidAccountData("La double authentification est déjà activée sur votre compte.")
        waiting = await self.pending_totp(account_id)
        if waiting is None:
            raise InvalidAccountData(MSG_ENROL_EXPIRED)
        if not await self._use_code(account_id, waiting.secret, code):
            raise InvalidCode(MSG_CODE_REFUSED)
        account = replace(account, totp_secret=waiting.secret)
        await self._save(account)
        await self.kv.delete(K_TOTP_ENROL, account_id)
        await self._tell(
            account,
            "Hygie : double authentification activée",
            "La double authentification (code à 6 chiffres) a été activée sur votre compte Hygie",
            "totp-on",
        )
        log.info("account %s: second factor turned on by its holder", account.id)
        return account

    async def disable_totp(self, account_id: str, password: str, code: str) -> Account:
        """Turn the second factor off: the password, then a current code (each failure counted
        like a sign-in failure). Raises :class:`WrongPassword`, :class:`InvalidCode`,
        :class:`TooManyAttempts` or :class:`InvalidAccountData` (it is not on)."""
        account = await self._active(account_id)
        secret = account.totp_secret
        if secret is None:
            raise InvalidAccountData("La double authentification n’est pas activée sur votre compte.")
        await self._check_password(account, password)

        async def code_ok() -> bool:
            return await self._use_code(account_id, secret, code)

        await self._checked(account, code_ok, InvalidCode(MSG_CODE_REFUSED))
        account = replace(account, totp_secret=None)
        await self._save(account)
        await self._tell(
            account,
            "Hygie : double authentification désactivée",
            "La double authentification a été désactivée sur votre compte Hygie",
            "totp-off",
        )
        log.info("account %s: second factor turned off by its holder", account.id)
        return account

    async def unlink_federated(self, account_id: str, issuer: str, subject: str) -> Account:
        """Remove a federated identity from the account, and refuse its automatic return.

        Refused (:class:`LastSignInMethod`) when the account has no password and this is its
        only identity: it could no longer sign in. The identity is remembered in
        ``refused_federated`` so that the linking rules do not link it again by the identity
        pivot (:meth:`allow_federated` lifts that)."""
        account = await self._active(account_id)
        pair = (issuer, subject)
        if pair not in account.federated:
            raise InvalidAccountData("Ce service d’identification n’est pas lié à votre compte.")
        if not account.has_password and len(account.federated) == 1:
            raise LastSignInMethod(
                "C’est votre seul moyen de connexion : votre compte n’a pas de mot de passe. "
                "Vous ne pouvez pas le retirer."
            )
        account = replace(
            account,
            federated=tuple(p for p in account.federated if p != pair),
            refused_federated=(*(p for p in account.refused_federated if p != pair), pair),
        )
        await self._save(account)
        key = json.dumps([issuer, subject])
        held = await self.kv.get(K_FEDERATED, key)
        if held is not None and held.get("id") == account_id:
            await self.kv.delete(K_FEDERATED, key)
        await self._tell(
            account,
            "Hygie : service d’identification retiré",
            "Un service d’identification a été retiré de votre compte Hygie",
            "federation-off",
        )
        log.info("account %s: federated identity removed by its holder", account.id)
        return account

    async def allow_federated(self, account_id: str, issuer: str, subject: str) -> Account:
        """Let a refused identity be linked again (at its next sign-in, by the linking rules)."""
        account = await self._active(account_id)
        pair = (issuer, subject)
        if pair not in account.refused_federated:
            raise InvalidAccountData("Ce service d’identification n’a pas été retiré de votre compte.")
        account = replace(account, refused_federated=tuple(p for p in account.refused_federated if p != pair))
        await self._save(account)
        return account

    async def record_sign_in(self, account_id: str, method: str, *, via: str | None = None) -> None:
        """Keep this sign-in among the account's last ten (date and method, no address).

        One record per account, read then replaced: two sign-ins of the same account in the
        same instant may keep only one of them — a history for the person, not an audit trail
        (the audit trail records every access to health data)."""
        record = await self.kv.get(K_SIGN_INS, account_id) or {"entries": []}
        entry: dict[str, Any] = {"at": self.clock(), "method": method}
        if via:
            entry["via"] = via
        entries = [*record.get("entries", []), entry][-SIGN_INS_KEPT:]
        await self.kv.put(K_SIGN_INS, account_id, {"entries": entries})

    async def sign_ins(self, account_id: str) -> list[SignIn]:
        """The account's last sign-ins, the most recent first."""
        record = await self.kv.get(K_SIGN_INS, account_id) or {"entries": []}
        return [
            SignIn(int(e["at"]), str(e["method"]), e.get("via"))
            for e in reversed(record.get("entries", []))
            if isinstance(e, dict) and "at" in e and "method" in e
        ]

    # -- counting ---------------------------------------------------------------------------------

    async def _claim(self, kind: str, key: str, until: int) -> bool:
        """Insert ``key`` unless a record lives there (judged by our clock); atomic via ``add``."""
        value = {"until": until}
        if await self.kv.add(kind, key, value, expires_us=until):
            return True
        held = await self.kv.get(kind, key)
        if held is not None and int(held.get("until", 0)) > self.clock():
            return False
        await self.kv.delete(kind, key)  # lapsed by our clock, not yet by the store's
        return await self.kv.add(kind, key, value, expires_us=until)

    async def _rate_limited(self, kind: str, subject: str, limit: int, window_us: int) -> int | None:
        """Count one attempt in the current fixed window; None if allowed, else seconds to wait."""
        now = self.clock()
        window = now // window_us
        window_end = (window + 1) * window_us
        base = f"{subject}#{window}"
        hint = await self.kv.get(kind, base)
        start = int(hint["n"]) if hint is not None and int(hint.get("until", 0)) > now else 0
        for n in range(start + 1, limit + 1):
            if await self._claim(kind, f"{base}#{n}", window_end):
                await self.kv.put(kind, base, {"n": n, "until": window_end}, expires_us=window_end)
                return None
        return _seconds(window_end - now)

    def _slot_keys(self, login_key: str) -> list[str]:
        return [f"{login_key}#{n}" for n in range(1, MAX_FAILURES + 1)]

    async def _reserve_attempt(self, login_key: str) -> str | None:
        """Claim a failure slot for the attempt about to be checked; None when all are taken."""
        until = self.clock() + LOCKOUT_US
        for key in self._slot_keys(login_key):
            if await self._claim(K_FAILURE, key, until):
                return key
        return None

    async def _live_slots(self, login_key: str) -> list[tuple[str, int]]:
        now = self.clock()
        live = []
        for key in self._slot_keys(login_key):
            held = await self.kv.get(K_FAILURE, key)
            if held is not None and int(held.get("until", 0)) > now:
                live.append((key, int(held["until"])))
        return live

    async def _record_failure(self, login_key: str) -> int:
        """Keep the attempt's slot and push every live slot's end 15 min ahead (failures count
        while they follow each other within 15 min, and a lock lasts 15 min from the last one).
        Returns the number of consecutive failures."""
        until = self.clock() + LOCKOUT_US
        live = await self._live_slots(login_key)
        for key, _ in live:
            await self.kv.put(K_FAILURE, key, {"until": until}, expires_us=until)
        return len(live)

    async def _lock_remaining_s(self, login_key: str) -> int:
        live = await self._live_slots(login_key)
        if not live:
            return 1
        return _seconds(min(until for _, until in live) - self.clock())

    async def _clear_failures(self, login_key: str) -> None:
        for key in self._slot_keys(login_key):
            await self.kv.delete(K_FAILURE, key)

    async def _failed(self, login_key: str, message: str) -> LoginResult:
        failures = await self._record_failure(login_key)
        delay = _delay_for(failures)
        if failures >= MAX_FAILURES:
            log.warning("auth: login %s locked after %d failures", login_key[:12], failures)
            return LoginResult(
                LoginStatus.LOCKED,
                _locked_message(LOCKOUT_US // SECOND_US),
                delay_s=delay,
                retry_after_s=LOCKOUT_US // SECOND_US,
            )
        log.info("auth: failure %d on login %s", failures, login_key[:12])
        return LoginResult(LoginStatus.INVALID, message, delay_s=delay)

    async def _locked(self, login_key: str) -> LoginResult:
        remaining = await self._lock_remaining_s(login_key)
        return LoginResult(LoginStatus.LOCKED, _locked_message(remaining), retry_after_s=remaining)

    # -- logging in -------------------------------------------------------------------------------

    async def authenticate(self, login: str, password: str, *, client_ip: str) -> LoginResult:
        """Check a login and password, under rate limits and the lockout.

        In order: the client address's rate limit (``IP_LIMIT`` per ``IP_WINDOW_US``), the
        login's (``LOGIN_LIMIT`` per ``LOGIN_WINDOW_US``), then a failure slot (none left: the
        login is locked, even for the right password). Then the password is checked (a dummy
        hash for an unknown login). A failure keeps its slot and answers a delay; the fifth in a
        row locks for 15 minutes. A success frees the slots, unless a second factor is due:
        then only :meth:`verify_second_factor` succeeding resets the count, so that knowing the
        password does not buy unlimited guesses at the code.
        """
        normalised = _lenient_login(login)
        login_key = _login_key(normalised if normalised is not None else login)
        wait = await self._rate_limited(K_RATE_IP, _ip_subject(client_ip), IP_LIMIT, IP_WINDOW_US)
        if wait is None:
            wait = await self._rate_limited(K_RATE_LOGIN, login_key, LOGIN_LIMIT, LOGIN_WINDOW_US)
        if wait is not None:
            log.warning("auth: rate limit hit (address %s)", _ip_subject(client_ip))
            return LoginResult(LoginStatus.RATE_LIMITED, MSG_RATE_LIMITED, retry_after_s=wait)

        slot = await self._reserve_attempt(login_key)
        if slot is None:
            return await self._locked(login_key)
        keep_slot = False
        try:
            account = await self.by_login(normalised) if normalised is not None else None
            if account is None:
                await asyncio.to_thread(dummy_verify, password)
                matched = False
            else:
                matched = await asyncio.to_thread(verify_password, account.password_hash, password)
            if account is None or not matched or not account.active:
                keep_slot = True
                return await self._failed(login_key, MSG_INVALID)

            if needs_rehash(account.password_hash):
                account = replace(account, password_hash=await asyncio.to_thread(hash_password, password))
                await self._save(account)
            if account.has_totp:
                until = self.clock() + MFA_PENDING_US
                await self.kv.put(K_MFA_PENDING, account.id, {"until": until}, expires_us=until)
                return LoginResult(LoginStatus.SECOND_FACTOR, MSG_SECOND_FACTOR, account_id=account.id)
            await self._clear_failures(login_key)
            await self.record_sign_in(account.id, "pwd")
            log.info("auth: account %s logged in", account.id)
            return LoginResult(LoginStatus.OK, MSG_OK, account_id=account.id)
        finally:
            if not keep_slot:
                await self.kv.delete(K_FAILURE, slot)

    async def verify_second_factor(self, account_id: str, code: str) -> LoginResult:
        """Check the TOTP code after :meth:`authenticate` answered ``SECOND_FACTOR``.

        Accepted within 5 minutes of the password, one step either side of now, and never twice:
        the used step is claimed atomically (``add``) and remembered as the last one, so the same
        code, or an older one, is refused even when submitted twice at once. Failures count
        towards the same lockout as wrong passwords.
        """
        account = await self.get(account_id)
        if account is None or account.totp_secret is None or not account.active:
            return LoginResult(LoginStatus.INVALID, MSG_INVALID_CODE)
        pending = await self.kv.get(K_MFA_PENDING, account_id)
        now = self.clock()
        if pending is None or int(pending.get("until", 0)) <= now:
            return LoginResult(LoginStatus.INVALID, MSG_MFA_EXPIRED)

        login_key = _login_key(account.login)
        slot = await self._reserve_attempt(login_key)
        if slot is None:
            return await self._locked(login_key)
        keep_slot = False
        try:
            if not await self._use_code(account_id, account.totp_secret, code):
                keep_slot = True
                return await self._failed(login_key, MSG_INVALID_CODE)
            await self.kv.delete(K_MFA_PENDING, account_id)
            await self._clear_failures(login_key)
            await self.record_sign_in(account.id, "pwd+otp")
            log.info("auth: account %s logged in (second factor)", account.id)
            return LoginResult(LoginStatus.OK, MSG_OK, account_id=account.id)
        finally:
            if not keep_slot:
                await self.kv.delete(K_FAILURE, slot)

    async def _use_code(self, account_id: str, secret: str, code: str) -> bool:
        """Whether ``code`` is valid now for ``secret`` and was never used on this account.

        The step is claimed atomically (``add``) and remembered as the last one, so the same
        code, or an older one, is refused even when submitted twice at once. A step is valid
        until one step after it ends (the window): its mark lives that long."""
        state = await self.kv.get(K_TOTP_STEP, account_id)
        last = int(state["step"]) if state is not None else None
        step = otp.verify(secret, code, last_used_step=last, at=self.clock() / SECOND_US)
        if step is None or not await self._claim(
            K_TOTP_USED, f"{account_id}#{step}", (step + otp.WINDOW + 1) * otp.STEP_SECONDS * SECOND_US
        ):
            return False
        await self.kv.put(K_TOTP_STEP, account_id, {"step": step if last is None else max(step, last)})
        return True

    # -- password reset ---------------------------------------------------------------------------

    async def start_password_reset(self, login: str, base_url: str) -> None:
        """Send a single-use reset link to the account's address, if there is such an account.

        The answer is the same (nothing) whether the login exists or not; the caller shows one
        neutral page ("if an account exists, a mail was sent"). The link carries 32 random bytes;
        only their SHA-256 is stored, for 30 minutes. At most one mail a minute per account.
        The login is the address: an account whose login is not an e-mail gets no mail.
        """
        account = await self.by_login(login)
        if account is None or not account.active or "@" not in account.login:
            log.info("auth: password reset requested for no reachable account")
            return
        now = self.clock()
        if not await self._claim(K_RESET_WAIT, account.id, now + RESET_COOLDOWN_US):
            log.info("auth: password reset for %s already sent less than a minute ago", account.id)
            return
        token = secrets.token_urlsafe(32)
        digest = _token_digest(token)
        expires = now + RESET_TTL_US
        await self.kv.put(
            K_RESET,
            digest,
            {"account": account.id, "expires": expires, "pw": _password_fingerprint(account.password_hash)},
            expires_us=expires,
        )
        link = f"{base_url.rstrip('/')}/compte/reinitialiser?{urlencode({'jeton': token})}"
        await self.outbox.enqueue(
            "email",
            account.login,
            RESET_SUBJECT,
            RESET_BODY.format(link=link),
            dedup_key=f"password-reset:{digest}",
        )
        log.info("auth: password reset link sent for account %s", account.id)

    async def complete_password_reset(self, token: str, new_password: str) -> Account:
        """Set a new password through a reset link; the link then no longer works.

        A password refused by the policy raises :class:`PasswordRejected` and leaves the link
        usable (the user corrects and resubmits). Anything else wrong with the link raises
        :class:`InvalidResetLink`. Two concurrent submissions: ``take`` lets exactly one win.
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidResetLink(MSG_RESET_INVALID)
        digest = _token_digest(token)
        record = await self.kv.get(K_RESET, digest)
        if record is None or int(record.get("expires", 0)) <= self.clock():
            raise InvalidResetLink(MSG_RESET_INVALID)
        account = await self.get(str(record["account"]))
        if (
            account is None
            or not account.active
            or record.get("pw") != _password_fingerprint(account.password_hash)
        ):
            await self.kv.delete(K_RESET, digest)
            raise InvalidResetLink(MSG_RESET_INVALID)
        problems = check_password_policy(new_password, account.login)
        if problems:
            raise PasswordRejected(problems)
        new_hash = await asyncio.to_thread(hash_password, new_password)
        if await self.kv.take(K_RESET, digest) is None:
            raise InvalidResetLink(MSG_RESET_INVALID)
        account = replace(account, password_hash=new_hash)
        await self._save(account)
        await self._clear_failures(_login_key(account.login))
        # whoever knew the old password is signed out everywhere, as after a change
        await self.end_sessions(account.id)
        log.info("auth: account %s: password reset through a link", account.id)
        return account


def _locked_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Trop d'échecs de connexion : le compte est verrouillé. "
        f"Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}."
    )
