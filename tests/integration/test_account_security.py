"""What an account holder manages themselves (``AccountService``), on the memory, SQLite and
PostgreSQL key-value stores: changing the password, turning the TOTP second factor on and off,
removing and allowing again a federated identity, the recent sign-ins, and the session
generation that ends the other browser sessions.

Each refused change writes nothing; each accepted one tells the person by e-mail, without any
secret. The clock starts at the real time (the stores expire records by it) and moves on demand,
so that codes of the next TOTP steps can be typed without waiting.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest

from hygie.auth import totp as otp
from hygie.auth.accounts import (
    MAX_FAILURES,
    SIGN_INS_KEPT,
    AccountService,
    InvalidAccountData,
    InvalidCode,
    LastSignInMethod,
    LoginStatus,
    PasswordRejected,
    TooManyAttempts,
    WrongPassword,
    session_generation,
)
from hygie.ports import KeyValueStore
from hygie.stores.kv import now_us

pytestmark = pytest.mark.anyio

BACKENDS = ["memory", "sqlite", "postgres"]
PASSWORD = "une phrase de passe solide"
NEW_PASSWORD = "un tout autre mot de passe long"
IP = "203.0.113.9"
ISSUER = "https://fc.example.fr"


class Clock:
    def __init__(self) -> None:
        self.now = now_us()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)

    def code(self, secret: str, steps_ahead: int = 0) -> str:
        """The code of the step ``steps_ahead`` after the clock's (the window accepts one)."""
        return pyotp.TOTP(secret).at(self.now / 1_000_000 + steps_ahead * otp.STEP_SECONDS)


@pytest.fixture(params=BACKENDS)
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        from hygie.stores.kv import MemoryKeyValueStore

        yield MemoryKeyValueStore()
    elif request.param == "sqlite":
        from hygie.stores.kv import SqliteKeyValueStore

        store = SqliteKeyValueStore(str(tmp_path / "kv.sqlite3"))
        yield store
        store.conn.close()
    else:
        import asyncpg

        from hygie.stores.kv import PostgresKeyValueStore

        pool = await asyncpg.create_pool(request.getfixturevalue("pg_database"), min_size=1, max_size=2)
        pg = PostgresKeyValueStore(pool)
        await pg.ensure_schema()
        await pool.execute("TRUNCATE kv")
        yield pg
        await pool.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(kv: KeyValueStore, clock: Clock) -> AccountService:
    return AccountService(kv, clock)


def wrong_code(clock: Clock, secret: str) -> str:
    """A six-digit code valid for none of the steps the window accepts."""
    valid = {clock.code(secret, n) for n in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def mails(service: AccountService) -> list[tuple[str, str, str]]:
    return [(m.to, m.subject, m.body) for m in await service.outbox.pending(due_only=False)]


async def test_change_password_checks_the_current_one_and_the_rules_then_ends_sessions(
    accounts: AccountService,
) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    before = await session_generation(accounts.kv, account.id)
    with pytest.raises(WrongPassword):
        await accounts.change_password(account.id, "pas le bon mot de passe", NEW_PASSWORD)
    with pytest.raises(PasswordRejected) as rejected:
        await accounts.change_password(account.id, PASSWORD, "court")
    assert any("12 caractères" in m for m in rejected.value.messages)
    with pytest.raises(PasswordRejected) as same:
        await accounts.change_password(account.id, PASSWORD, PASSWORD)
    assert same.value.messages == ("Choisissez un mot de passe différent du mot de passe actuel.",)
    # nothing was written by the refusals: the old password still signs in, no mail, same sessions
    assert (await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)).ok
    assert await mails(accounts) == []
    assert await session_generation(accounts.kv, account.id) == before

    await accounts.change_password(account.id, PASSWORD, NEW_PASSWORD)
    assert not (await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)).ok
    assert (await accounts.authenticate("claire@example.fr", NEW_PASSWORD, client_ip=IP)).ok
    after = await session_generation(accounts.kv, account.id)
    assert after is not None and after != before
    [(to, subject, body)] = await mails(accounts)
    assert to == "claire@example.fr"
    assert subject == "Hygie : votre mot de passe a été changé"
    assert NEW_PASSWORD not in body and PASSWORD not in body
    assert "Mot de passe oublié" in body


async def test_wrong_current_passwords_count_towards_the_sign_in_lockout(accounts: AccountService) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(WrongPassword):
            await accounts.change_password(account.id, "mauvais mot de passe", NEW_PASSWORD)
    with pytest.raises(TooManyAttempts):
        await accounts.change_password(account.id, "mauvais mot de passe", NEW_PASSWORD)
    # locked: even the right password is refused, here and at sign-in
    with pytest.raises(TooManyAttempts):
        await accounts.change_password(account.id, PASSWORD, NEW_PASSWORD)
    locked = await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)
    assert locked.status is LoginStatus.LOCKED


async def test_second_factor_is_on_only_after_a_valid_code_and_that_code_never_signs_in(
    accounts: AccountService, clock: Clock
) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    enrolment = await accounts.start_totp(account.id)
    assert enrolment.uri.startswith("otpauth://totp/Hygie:claire%40example.fr?secret=")
    again = await accounts.start_totp(account.id)  # a reload keeps the secret already scanned
    assert again.secret == enrolment.secret
    assert (await accounts.get(account.id)).totp_secret is None  # type: ignore[union-attr]

    with pytest.raises(InvalidCode):
        await accounts.confirm_totp(account.id, wrong_code(clock, enrolment.secret))
    assert not (await accounts.get(account.id)).has_totp  # type: ignore[union-attr]
    code = clock.code(enrolment.secret)
    on = await accounts.confirm_totp(account.id, code)
    assert on.has_totp and on.totp_secret == enrolment.secret
    assert await accounts.pending_totp(account.id) is None
    with pytest.raises(InvalidAccountData):
        await accounts.start_totp(account.id)

    first = await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)
    assert first.status is LoginStatus.SECOND_FACTOR
    # the code that turned the factor on was used: it cannot sign in (replay)
    assert not (await accounts.verify_second_factor(account.id, code)).ok
    again_pw = await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)
    assert again_pw.status is LoginStatus.SECOND_FACTOR
    assert (await accounts.verify_second_factor(account.id, clock.code(enrolment.secret, 1))).ok
    subjects = [s for _, s, _ in await mails(accounts)]
    assert subjects == ["Hygie : double authentification activée"]
    assert all(enrolment.secret not in body for _, _, body in await mails(accounts))


async def test_an_enrolment_lapses_after_fifteen_minutes(accounts: AccountService, clock: Clock) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    enrolment = await accounts.start_totp(account.id)
    clock.advance(16 * 60)
    assert await accounts.pending_totp(account.id) is None
    with pytest.raises(InvalidAccountData):
        await accounts.confirm_totp(account.id, clock.code(enrolment.secret))
    assert (await accounts.start_totp(account.id)).secret != enrolment.secret


async def test_turning_the_second_factor_off_needs_the_password_and_a_current_code(
    accounts: AccountService, clock: Clock
) -> None:
    account, uri = await accounts.create("citizen", "claire@example.fr", PASSWORD, totp=True)
    assert uri is not None
    secret = account.totp_secret
    assert secret is not None
    with pytest.raises(WrongPassword):
        await accounts.disable_totp(account.id, "mauvais mot de passe", clock.code(secret))
    with pytest.raises(InvalidCode):
        await accounts.disable_totp(account.id, PASSWORD, "12345")
    assert (await accounts.get(account.id)).has_totp  # type: ignore[union-attr]
    used = clock.code(secret)
    off = await accounts.disable_totp(account.id, PASSWORD, used)
    assert not off.has_totp
    assert (await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)).ok
    with pytest.raises(InvalidAccountData):
        await accounts.disable_totp(account.id, PASSWORD, used)
    assert [s for _, s, _ in await mails(accounts)] == ["Hygie : double authentification désactivée"]


async def test_a_removed_identity_is_refused_until_allowed_again(accounts: AccountService) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    await accounts.link_federated(account.id, ISSUER, "sub-claire")
    removed = await accounts.unlink_federated(account.id, ISSUER, "sub-claire")
    assert removed.federated == ()
    assert removed.refused_federated == ((ISSUER, "sub-claire"),)
    assert await accounts.by_federated(ISSUER, "sub-claire") is None
    with pytest.raises(InvalidAccountData):
        await accounts.unlink_federated(account.id, ISSUER, "sub-claire")
    allowed = await accounts.allow_federated(account.id, ISSUER, "sub-claire")
    assert allowed.refused_federated == ()
    # an explicit link (an operator's) lifts a refusal too
    await accounts.link_federated(account.id, ISSUER, "sub-claire")
    await accounts.unlink_federated(account.id, ISSUER, "sub-claire")
    relinked = await accounts.link_federated(account.id, ISSUER, "sub-claire")
    assert relinked.federated == ((ISSUER, "sub-claire"),) and relinked.refused_federated == ()
    assert [s for _, s, _ in await mails(accounts)] == ["Hygie : service d’identification retiré"] * 2


async def test_the_last_way_to_sign_in_cannot_be_removed(accounts: AccountService) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD)
    await accounts.link_federated(account.id, ISSUER, "sub-claire")
    # an account that signs in only through its provider (no password hash)
    record = await accounts.kv.get("account", account.id)
    assert record is not None
    await accounts.kv.put("account", account.id, {**record, "password_hash": ""})
    with pytest.raises(LastSignInMethod):
        await accounts.unlink_federated(account.id, ISSUER, "sub-claire")
    kept = await accounts.get(account.id)
    assert kept is not None and kept.federated == ((ISSUER, "sub-claire"),)
    assert await accounts.kv.get("account-federated", json.dumps([ISSUER, "sub-claire"])) is not None
    # with a second identity, one of them may go
    await accounts.link_federated(account.id, "https://autre.example.fr", "sub-2")
    assert (await accounts.unlink_federated(account.id, ISSUER, "sub-claire")).federated == (
        ("https://autre.example.fr", "sub-2"),
    )


async def test_sign_ins_are_recorded_with_their_method_ten_at_most(
    accounts: AccountService, clock: Clock
) -> None:
    account, _ = await accounts.create("citizen", "claire@example.fr", PASSWORD, totp=True)
    secret = account.totp_secret
    assert secret is not None
    assert (await accounts.authenticate("claire@example.fr", PASSWORD, client_ip=IP)).needs_second_factor
    assert await accounts.sign_ins(account.id) == []  # the password alone is not a sign-in yet
    assert (await accounts.verify_second_factor(account.id, clock.code(secret))).ok
    await accounts.record_sign_in(account.id, "fed", via=ISSUER)
    [latest, first] = await accounts.sign_ins(account.id)
    assert (latest.method, latest.via, latest.label) == ("fed", ISSUER, "Service d’identification")
    assert (first.method, first.label) == ("pwd+otp", "Mot de passe et code de vérification")
    for _ in range(SIGN_INS_KEPT + 3):
        clock.advance(1)
        await accounts.record_sign_in(account.id, "pwd")
    kept = await accounts.sign_ins(account.id)
    assert len(kept) == SIGN_INS_KEPT
    assert [s.at for s in kept] == sorted((s.at for s in kept), reverse=True)
    record = await accounts.kv.get("account-sign-ins", account.id)
    assert record is not None and IP not in json.dumps(record)  # no address is kept
