"""AccountService on the memory and SQLite key-value stores, with an injected clock.

Covers: creation (duplicates, policy, links), login, lockout and unlock, IP and login rate
limits, the absence of user enumeration, the TOTP second factor and its replay protection,
federated identities, password reset links (single use, expiry) and the reset e-mail.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from argon2 import PasswordHasher, Type

import hygie.auth.accounts as accounts_module
from hygie.auth import passwords
from hygie.auth.accounts import (
    IP_LIMIT,
    IP_WINDOW_US,
    LOGIN_LIMIT,
    LOGIN_WINDOW_US,
    MAX_FAILURES,
    AccountService,
    DuplicateLogin,
    FederatedIdentityTaken,
    InvalidAccountData,
    InvalidResetLink,
    LoginResult,
    LoginStatus,
    PasswordRejected,
    UnknownAccount,
)
from hygie.auth.passwords import MEMORY_COST_KIB, needs_rehash
from hygie.domain.outbox import Outbox
from hygie.ports import KeyValueStore
from hygie.stores.kv import MemoryKeyValueStore, SqliteKeyValueStore, now_us

pytestmark = pytest.mark.anyio

PASSWORD = "une phrase de passe solide"
OTHER = "une autre phrase assez longue"
IP = "203.0.113.7"


class Clock:
    """Microseconds; starts at the real time (the store's expiry runs on it) and moves on demand."""

    def __init__(self) -> None:
        self.now = now_us()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)

    def to_next_window(self, window_us: int) -> None:
        """Jump to just after the start of the next rate-limit window, so that a test's attempts
        all fall in one window however close to its end the real time started."""
        self.now = (self.now // window_us + 1) * window_us + 1


@pytest.fixture(params=["memory", "sqlite"])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        yield MemoryKeyValueStore()
    else:
        store = SqliteKeyValueStore(":memory:")
        yield store
        store.conn.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(kv: KeyValueStore, clock: Clock) -> AccountService:
    return AccountService(kv, clock)


def totp_code(secret: str, clock: Clock, offset_s: float = 0) -> str:
    return pyotp.TOTP(secret).at(clock() / 1_000_000 + offset_s)


# -- creation -----------------------------------------------------------------------------------


async def test_create_normalises_the_login_and_stores_a_hash(service: AccountService) -> None:
    account, uri = await service.create("citizen", "  Alice@Exemple.FR ", PASSWORD, patient_id="p1")
    assert uri is None
    assert account.login == "alice@exemple.fr"
    assert account.kind == "citizen"
    assert account.patient_id == "p1"
    assert account.status == "active"
    assert account.totp_secret is None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert await service.get(account.id) == account
    assert await service.by_login("ALICE@exemple.fr") == account
    assert await service.by_login("nobody@exemple.fr") is None


async def test_create_with_totp_returns_the_provisioning_uri(service: AccountService) -> None:
    account, uri = await service.create("operator", "ops-admin", PASSWORD, totp=True)
    assert account.totp_secret is not None
    assert uri is not None
    assert uri.startswith("otpauth://totp/Hygie:ops-admin?")
    assert parse_qs(urlsplit(uri).query)["secret"] == [account.totp_secret]
    # neither the hash nor the secret shows in a log line or a traceback
    assert account.totp_secret not in repr(account)
    assert account.password_hash not in repr(account)


async def test_duplicate_login_is_refused_whatever_its_case(service: AccountService) -> None:
    await service.create("citizen", "bob@exemple.fr", PASSWORD)
    with pytest.raises(DuplicateLogin) as caught:
        await service.create("professional", "BOB@exemple.fr", OTHER)
    assert caught.value.messages == ("Un compte existe déjà avec cet identifiant.",)


async def test_concurrent_creations_of_one_login_make_one_account(
    service: AccountService, kv: KeyValueStore
) -> None:
    results = await asyncio.gather(
        *(service.create("citizen", "race@exemple.fr", PASSWORD) for _ in range(3)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, tuple)]
    assert len(created) == 1
    assert all(isinstance(r, DuplicateLogin) for r in results if not isinstance(r, tuple))
    assert [k for k, _ in await kv.list("account")] == [created[0][0].id]


async def test_policy_failures_carry_every_french_message(service: AccountService) -> None:
    with pytest.raises(PasswordRejected) as caught:
        await service.create("citizen", "azerty", "azerty")
    assert len(caught.value.messages) == 3
    assert "au moins 12 caractères" in str(caught.value)
    assert await service.by_login("azerty") is None


async def test_links_must_match_the_kind(service: AccountService) -> None:
    with pytest.raises(InvalidAccountData, match="citoyen"):
        await service.create("professional", "dr-x", PASSWORD, patient_id="p1")
    with pytest.raises(InvalidAccountData, match="professionnel"):
        await service.create("citizen", "y@exemple.fr", PASSWORD, practitioner_id="pr1")
    with pytest.raises(InvalidAccountData, match="Type de compte"):
        await service.create("admin", "z", PASSWORD)
    with pytest.raises(InvalidAccountData, match="espace"):
        await service.create("citizen", "jean dupont", PASSWORD)
    with pytest.raises(InvalidAccountData, match="obligatoire"):
        await service.create("citizen", "   ", PASSWORD)


# -- login, lockout, rate limits ----------------------------------------------------------------


async def test_login_succeeds_with_the_right_password_only(service: AccountService) -> None:
    account, _ = await service.create("professional", "dr-martin", PASSWORD, practitioner_id="pr1")
    ok = await service.authenticate("DR-Martin", PASSWORD, client_ip=IP)
    assert ok.status is LoginStatus.OK
    assert ok.ok and not ok.needs_second_factor
    assert ok.account_id == account.id
    bad = await service.authenticate("dr-martin", OTHER, client_ip=IP)
    assert bad == LoginResult(LoginStatus.INVALID, "Identifiant ou mot de passe incorrect.")


async def test_lockout_after_five_failures_then_unlock_after_fifteen_minutes(
    service: AccountService, clock: Clock
) -> None:
    await service.create("citizen", "carla@exemple.fr", PASSWORD)
    results = []
    for _ in range(MAX_FAILURES):
        results.append(await service.authenticate("carla@exemple.fr", OTHER, client_ip=IP))
        clock.advance(10)
    assert [r.delay_s for r in results] == [0, 1, 2, 4, 8]  # slowed…
    assert [r.status for r in results] == [LoginStatus.INVALID] * 4 + [LoginStatus.LOCKED]  # …then locked
    assert results[-1].retry_after_s == 15 * 60
    assert "verrouillé" in results[-1].message

    # locked: even the right password is refused, and the wait shrinks as time passes
    clock.advance(5 * 60)
    locked = await service.authenticate("carla@exemple.fr", PASSWORD, client_ip="198.51.100.1")
    assert locked.status is LoginStatus.LOCKED
    assert locked.retry_after_s is not None and 9 * 60 < locked.retry_after_s <= 10 * 60

    clock.advance(10 * 60)
    assert (await service.authenticate("carla@exemple.fr", PASSWORD, client_ip=IP)).ok
    # the success reset the counter: the next failure is a first one again
    assert (await service.authenticate("carla@exemple.fr", OTHER, client_ip=IP)).delay_s == 0


async def test_success_resets_the_failure_count(service: AccountService) -> None:
    await service.create("citizen", "dan@exemple.fr", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        await service.authenticate("dan@exemple.fr", OTHER, client_ip=IP)
    assert (await service.authenticate("dan@exemple.fr", PASSWORD, client_ip=IP)).ok
    again = [
        await service.authenticate("dan@exemple.fr", OTHER, client_ip=IP) for _ in range(MAX_FAILURES - 1)
    ]
    assert all(r.status is LoginStatus.INVALID for r in again)


async def test_a_parallel_burst_is_locked_after_five_checks(
    service: AccountService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nine guesses at once: only five get a failure slot, the rest are refused unchecked."""
    await service.create("citizen", "eve@exemple.fr", PASSWORD)
    checked: list[str] = []
    real_verify = passwords.verify_password

    def spy(stored: str, password: str) -> bool:
        checked.append(password)
        return real_verify(stored, password)

    monkeypatch.setattr(accounts_module, "verify_password", spy)
    size = LOGIN_LIMIT - 1
    burst = await asyncio.gather(
        *(service.authenticate("eve@exemple.fr", f"guess number {i:04d}", client_ip=IP) for i in range(size))
    )
    assert len(checked) == MAX_FAILURES
    assert sum(r.status is LoginStatus.INVALID for r in burst) <= MAX_FAILURES - 1
    assert sum(r.status is LoginStatus.LOCKED for r in burst) >= size - MAX_FAILURES + 1
    assert (await service.authenticate("eve@exemple.fr", PASSWORD, client_ip=IP)).status is LoginStatus.LOCKED


async def test_ip_rate_limit(service: AccountService, clock: Clock) -> None:
    clock.to_next_window(IP_WINDOW_US)
    for i in range(IP_LIMIT):
        result = await service.authenticate(f"user{i}@exemple.fr", OTHER, client_ip=IP)
        assert result.status is LoginStatus.INVALID
    limited = await service.authenticate("someone@exemple.fr", OTHER, client_ip=IP)
    assert limited.status is LoginStatus.RATE_LIMITED
    assert limited.retry_after_s is not None and 0 < limited.retry_after_s <= 5 * 60
    assert "Trop de tentatives" in limited.message
    # another address is not affected
    other = await service.authenticate("someone@exemple.fr", OTHER, client_ip="192.0.2.99")
    assert other.status is LoginStatus.INVALID
    # the window passes
    clock.advance(5 * 60)
    assert (await service.authenticate("else@exemple.fr", OTHER, client_ip=IP)).status is LoginStatus.INVALID


async def test_ipv6_addresses_of_one_slash_64_share_a_limit(service: AccountService, clock: Clock) -> None:
    clock.to_next_window(IP_WINDOW_US)
    for i in range(IP_LIMIT):
        await service.authenticate(f"v6user{i}", OTHER, client_ip=f"2001:db8:1:2::{i + 1:x}")
    limited = await service.authenticate("v6user", OTHER, client_ip="2001:db8:1:2:ffff::1")
    assert limited.status is LoginStatus.RATE_LIMITED
    other_net = await service.authenticate("v6user", OTHER, client_ip="2001:db8:1:3::1")
    assert other_net.status is LoginStatus.INVALID


async def test_login_rate_limit_counts_every_attempt(service: AccountService, clock: Clock) -> None:
    clock.to_next_window(LOGIN_WINDOW_US)
    await service.create("citizen", "fanny@exemple.fr", PASSWORD)
    for i in range(LOGIN_LIMIT):
        assert (await service.authenticate("fanny@exemple.fr", PASSWORD, client_ip=f"192.0.2.{i}")).ok
    limited = await service.authenticate("fanny@exemple.fr", PASSWORD, client_ip="192.0.2.200")
    assert limited.status is LoginStatus.RATE_LIMITED


async def test_no_user_enumeration(service: AccountService, monkeypatch: pytest.MonkeyPatch) -> None:
    await service.create("citizen", "gus@exemple.fr", PASSWORD)
    dummy_calls: list[str] = []
    real_dummy = passwords.dummy_verify

    def spy(password: str) -> None:
        dummy_calls.append("x")
        real_dummy(password)

    monkeypatch.setattr(accounts_module, "dummy_verify", spy)
    known = [await service.authenticate("gus@exemple.fr", OTHER, client_ip=IP) for _ in range(MAX_FAILURES)]
    unknown = [
        await service.authenticate("nobody@exemple.fr", OTHER, client_ip="192.0.2.1")
        for _ in range(MAX_FAILURES)
    ]
    assert known == unknown  # same statuses, messages, delays, lock — and no account id
    assert all(r.account_id is None for r in known)
    assert len(dummy_calls) == MAX_FAILURES  # the unknown login spent a hash's time each time


async def test_disabled_account_answers_like_a_wrong_password(service: AccountService) -> None:
    account, _ = await service.create("professional", "hugo", PASSWORD)
    await service.disable(account.id)
    result = await service.authenticate("hugo", PASSWORD, client_ip=IP)
    assert result == LoginResult(LoginStatus.INVALID, "Identifiant ou mot de passe incorrect.")
    await service.enable(account.id)
    assert (await service.authenticate("hugo", PASSWORD, client_ip=IP)).ok


async def test_an_old_hash_is_upgraded_at_login(service: AccountService, kv: KeyValueStore) -> None:
    account, _ = await service.create("citizen", "ines@exemple.fr", PASSWORD)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    await kv.put("account", account.id, {**account.to_record(), "password_hash": weak})
    assert (await service.authenticate("ines@exemple.fr", PASSWORD, client_ip=IP)).ok
    upgraded = await service.get(account.id)
    assert upgraded is not None
    assert f"m={MEMORY_COST_KIB}" in upgraded.password_hash
    assert not needs_rehash(upgraded.password_hash)


# -- second factor ------------------------------------------------------------------------------


async def test_second_factor_flow_and_replay(service: AccountService, clock: Clock) -> None:
    account, _ = await service.create("operator", "ops", PASSWORD, totp=True)
    assert account.totp_secret is not None
    first = await service.authenticate("ops", PASSWORD, client_ip=IP)
    assert first.status is LoginStatus.SECOND_FACTOR
    assert first.needs_second_factor and not first.ok
    assert first.account_id == account.id

    code = totp_code(account.totp_secret, clock)
    ok = await service.verify_second_factor(account.id, code)
    assert ok.ok and ok.account_id == account.id

    # the same code again, after a fresh password check: refused (replay)
    assert (await service.authenticate("ops", PASSWORD, client_ip=IP)).needs_second_factor
    replay = await service.verify_second_factor(account.id, code)
    assert replay.status is LoginStatus.INVALID
    assert replay.message == "Code de vérification incorrect."
    # the next step's code works (±1 step window)
    assert (await service.verify_second_factor(account.id, totp_code(account.totp_secret, clock, 30))).ok


async def test_concurrent_submissions_of_one_code_succeed_once(service: AccountService, clock: Clock) -> None:
    account, _ = await service.create("operator", "ops2", PASSWORD, totp=True)
    assert account.totp_secret is not None
    await service.authenticate("ops2", PASSWORD, client_ip=IP)
    code = totp_code(account.totp_secret, clock)
    results = await asyncio.gather(*(service.verify_second_factor(account.id, code) for _ in range(4)))
    assert sum(r.ok for r in results) == 1


async def test_second_factor_window(service: AccountService, clock: Clock) -> None:
    account, _ = await service.create("operator", "ops3", PASSWORD, totp=True)
    assert account.totp_secret is not None
    await service.authenticate("ops3", PASSWORD, client_ip=IP)
    too_old = totp_code(account.totp_secret, clock, -60)
    assert not (await service.verify_second_factor(account.id, too_old)).ok
    previous = totp_code(account.totp_secret, clock, -30)
    assert (await service.verify_second_factor(account.id, previous)).ok


async def test_second_factor_needs_a_recent_password_check(service: AccountService, clock: Clock) -> None:
    account, _ = await service.create("operator", "ops4", PASSWORD, totp=True)
    assert account.totp_secret is not None
    no_password = await service.verify_second_factor(account.id, totp_code(account.totp_secret, clock))
    assert no_password.status is LoginStatus.INVALID
    assert "reconnectez-vous" in no_password.message
    await service.authenticate("ops4", PASSWORD, client_ip=IP)
    clock.advance(6 * 60)
    late = await service.verify_second_factor(account.id, totp_code(account.totp_secret, clock))
    assert not late.ok
    # an account without TOTP, or an unknown one, never passes this step
    plain, _ = await service.create("citizen", "plain@exemple.fr", PASSWORD)
    assert not (await service.verify_second_factor(plain.id, "123456")).ok
    assert not (await service.verify_second_factor("no-such-id", "123456")).ok


async def test_wrong_codes_lock_and_a_password_success_does_not_reset_them(
    service: AccountService, clock: Clock
) -> None:
    account, _ = await service.create("operator", "ops5", PASSWORD, totp=True)
    assert account.totp_secret is not None
    secret = account.totp_secret
    valid = {totp_code(secret, clock, d) for d in (-30, 0, 30)}
    wrong = next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)
    await service.authenticate("ops5", PASSWORD, client_ip=IP)
    for _ in range(MAX_FAILURES - 1):
        assert (await service.verify_second_factor(account.id, wrong)).status is LoginStatus.INVALID
    # the password is known: checking it again must not buy more guesses at the code
    assert (await service.authenticate("ops5", PASSWORD, client_ip=IP)).needs_second_factor
    locked = await service.verify_second_factor(account.id, wrong)
    assert locked.status is LoginStatus.LOCKED
    assert (
        await service.verify_second_factor(account.id, totp_code(secret, clock))
    ).status is LoginStatus.LOCKED
    clock.advance(15 * 60 + 1)
    assert (await service.authenticate("ops5", PASSWORD, client_ip=IP)).needs_second_factor
    assert (await service.verify_second_factor(account.id, totp_code(secret, clock))).ok


# -- federated identities -----------------------------------------------------------------------


async def test_federated_identities(service: AccountService) -> None:
    alice, _ = await service.create("citizen", "alice@exemple.fr", PASSWORD)
    bob, _ = await service.create("citizen", "bob@exemple.fr", PASSWORD)
    issuer = "https://fcp.integ01.dev-franceconnect.fr/api/v1"
    linked = await service.link_federated(alice.id, issuer, "sub-123")
    assert linked.federated == ((issuer, "sub-123"),)
    assert await service.by_federated(issuer, "sub-123") == linked
    assert await service.by_federated(issuer, "sub-999") is None
    assert (
        await service.link_federated(alice.id, issuer, "sub-123")
    ).federated == linked.federated  # idempotent
    with pytest.raises(FederatedIdentityTaken):
        await service.link_federated(bob.id, issuer, "sub-123")
    with pytest.raises(UnknownAccount):
        await service.link_federated("no-such-id", issuer, "sub-456")


# -- password reset -----------------------------------------------------------------------------

LINK = re.compile(r"https://hygie\.example/compte/reinitialiser\?jeton=([A-Za-z0-9_-]+)")


async def reset_token(outbox: Outbox) -> str:
    messages = await outbox.pending()
    assert messages, "no reset mail enqueued"
    match = LINK.search(messages[-1].body)
    assert match is not None
    return match.group(1)


async def test_reset_link_is_mailed_and_single_use(service: AccountService, kv: KeyValueStore) -> None:
    account, _ = await service.create("citizen", "julie@exemple.fr", PASSWORD)
    await service.start_password_reset(
        "Julie@Exemple.fr", "https://hygie.example/"
    )  # answers nothing either way
    [mail] = await service.outbox.pending()
    assert mail.channel == "email"
    assert mail.to == "julie@exemple.fr"
    assert mail.subject == "Hygie : réinitialisation de votre mot de passe"
    assert "30 minutes" in mail.body
    token = await reset_token(service.outbox)
    assert len(token) >= 43  # 32 random bytes, base64url
    # only the digest is stored
    stored = await kv.list("password-reset")
    assert len(stored) == 1 and token not in str(stored)

    # a weak password is refused, and the link stays usable
    with pytest.raises(PasswordRejected):
        await service.complete_password_reset(token, "court")
    updated = await service.complete_password_reset(token, OTHER)
    assert updated.id == account.id
    assert (await service.authenticate("julie@exemple.fr", OTHER, client_ip=IP)).ok
    assert not (await service.authenticate("julie@exemple.fr", PASSWORD, client_ip=IP)).ok
    with pytest.raises(InvalidResetLink) as caught:
        await service.complete_password_reset(token, "encore une autre phrase")
    assert "n'est plus valable" in caught.value.messages[0]


async def test_reset_link_expires_after_thirty_minutes(service: AccountService, clock: Clock) -> None:
    await service.create("citizen", "karim@exemple.fr", PASSWORD)
    await service.start_password_reset("karim@exemple.fr", "https://hygie.example")
    token = await reset_token(service.outbox)
    clock.advance(30 * 60 + 1)
    with pytest.raises(InvalidResetLink):
        await service.complete_password_reset(token, OTHER)


async def test_reset_for_unknown_login_enqueues_nothing_and_says_nothing(service: AccountService) -> None:
    await service.create("professional", "no-mail-login", PASSWORD)
    await service.start_password_reset(
        "nobody@exemple.fr", "https://hygie.example"
    )  # answers nothing either way
    await service.start_password_reset("no-mail-login", "https://hygie.example")  # answers nothing either way
    await service.start_password_reset("", "https://hygie.example")  # answers nothing either way
    assert await service.outbox.pending() == []


async def test_reset_requests_are_throttled_and_a_password_change_voids_links(
    service: AccountService, clock: Clock
) -> None:
    account, _ = await service.create("citizen", "lea@exemple.fr", PASSWORD)
    await service.start_password_reset("lea@exemple.fr", "https://hygie.example")
    await service.start_password_reset("lea@exemple.fr", "https://hygie.example")  # double click
    assert len(await service.outbox.pending()) == 1
    token = await reset_token(service.outbox)
    await service.set_password(account.id, "nouvelle phrase choisie ici")
    with pytest.raises(InvalidResetLink):
        await service.complete_password_reset(token, OTHER)
    clock.advance(61)
    await service.start_password_reset("lea@exemple.fr", "https://hygie.example")
    assert len(await service.outbox.pending()) == 2


async def test_reset_clears_the_lockout(service: AccountService) -> None:
    await service.create("citizen", "marc@exemple.fr", PASSWORD)
    for _ in range(MAX_FAILURES):
        await service.authenticate("marc@exemple.fr", OTHER, client_ip=IP)
    assert (
        await service.authenticate("marc@exemple.fr", PASSWORD, client_ip=IP)
    ).status is LoginStatus.LOCKED
    await service.start_password_reset("marc@exemple.fr", "https://hygie.example")
    await service.complete_password_reset(await reset_token(service.outbox), "retour à la normale enfin")
    assert (await service.authenticate("marc@exemple.fr", "retour à la normale enfin", client_ip=IP)).ok


async def test_bogus_tokens_are_refused(service: AccountService) -> None:
    for token in ["", "x" * 500, "not-a-real-token"]:
        with pytest.raises(InvalidResetLink):
            await service.complete_password_reset(token, OTHER)


async def test_set_password_checks_the_policy(service: AccountService) -> None:
    account, _ = await service.create("citizen", "nina@exemple.fr", PASSWORD)
    with pytest.raises(PasswordRejected):
        await service.set_password(account.id, "nina@exemple.fr")
    with pytest.raises(UnknownAccount):
        await service.set_password("no-such-id", OTHER)
