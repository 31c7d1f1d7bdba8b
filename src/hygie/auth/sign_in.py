"""From accounts to signed-in subjects: what the sign-in pages and the token carry.

:class:`AccountSignIn` runs the password and second-factor steps of
:class:`~hygie.auth.accounts.AccountService` and turns a success into a
:class:`~hygie.auth.server.Subject` — the citizen's own Patient or the professional's
Practitioner as ``fhirUser``, the authentication time and methods (``pwd``, ``otp``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hygie.auth.accounts import Account, AccountService, LoginStatus
from hygie.auth.server import Subject

__all__ = ["AccountSignIn", "LoginOutcome", "subject_of"]


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """The answer of a password step: a subject, a second factor to ask, or a refusal."""

    subject: Subject | None
    second_factor_for: str | None = None  # account id awaiting its TOTP code
    delay_s: float = 0.0
    message: str = "Identifiant ou mot de passe incorrect."


def subject_of(
    account: Account, *, auth_time_s: int, amr: tuple[str, ...], acr: str | None = None
) -> Subject:
    fhir_user = None
    if account.kind == "citizen" and account.patient_id:
        fhir_user = f"Patient/{account.patient_id}"
    elif account.kind == "professional" and account.practitioner_id:
        fhir_user = f"Practitioner/{account.practitioner_id}"
    return Subject(
        account_id=account.id,
        kind=account.kind,
        fhir_user=fhir_user,
        patient=account.patient_id if account.kind == "citizen" else None,
        name=account.login,
        auth_time=auth_time_s,
        acr=acr,
        amr=amr,
    )


class AccountSignIn:
    def __init__(self, accounts: AccountService, clock: Callable[[], int]) -> None:
        self.accounts = accounts
        self.clock = clock

    async def login(self, login: str, password: str, client_ip: str) -> LoginOutcome:
        result = await self.accounts.authenticate(login, password, client_ip=client_ip)
        if result.status is LoginStatus.SECOND_FACTOR and result.account_id:
            return LoginOutcome(None, second_factor_for=result.account_id, message=result.message)
        if result.ok and result.account_id:
            account = await self.accounts.get(result.account_id)
            if account is not None:
                return LoginOutcome(subject_of(account, auth_time_s=self.clock() // 1_000_000, amr=("pwd",)))
        return LoginOutcome(None, delay_s=result.delay_s, message=result.message)

    async def second_factor(self, account_id: str, code: str) -> Subject | None:
        result = await self.accounts.verify_second_factor(account_id, code)
        if not result.ok:
            return None
        account = await self.accounts.get(account_id)
        if account is None:
            return None
        return subject_of(account, auth_time_s=self.clock() // 1_000_000, amr=("pwd", "otp"))

    async def start_password_reset(self, login: str, base_url: str) -> None:
        """The "forgotten password" link by e-mail (:meth:`AccountService.start_password_reset`)."""
        await self.accounts.start_password_reset(login, base_url)

    async def complete_password_reset(self, token: str, new_password: str) -> None:
        """A new password through that link (raises ``PasswordRejected`` / ``InvalidResetLink``)."""
        await self.accounts.complete_password_reset(token, new_password)
