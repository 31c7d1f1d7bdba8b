"""ENS "Connexion et sécurité" (``/ens/compte``): the citizen manages how they sign in.

As the best citizen portals do (Mon espace santé's "Paramètres / Connexion et sécurité", the
NHS App's "Account and settings"), one page says how the person signs in and lets them change
it themselves:

* ``/ens/compte/mot-de-passe`` — change the password: the current one, then a new one under the
  account's password rules (``auth/passwords.py``), typed twice. Every other browser session of
  the account ends; this browser gets a new session (``OAuthWeb.renew_session``) and stays signed
  in;
* ``/ens/compte/double-authentification`` — turn the second factor on: a secret made server-side
  (``AccountService.start_totp``), shown as a QR code (segno SVG in an ``<img>``: the CSP forbids
  inline styles) and as text to type by hand; it is on only once the person types a valid code
  (replay-protected like at sign-in). ``…/desactiver`` turns it off with the password and a
  current code;
* ``/ens/compte/identites/…`` — the identity providers linked to the account (FranceConnect-
  style), with "retirer" (never the last way to sign in) and "autoriser à nouveau";
* the last ten sign-ins: date and method, never an address.

Only the account holder acts, on their own account: the account is the signed-in one
(``visitor.subject.account_id``), whatever space is shown — a parent in a child's space sees
their own account here, never the child's. Every form carries the CSRF token and a one-time
``jeton`` (the portal frame); a refused form comes back with its message beside the field and
what was typed kept (never a password or a code). Each change is one write of the account
record (``auth/accounts.py``) and an e-mail to the person without any secret.

Account records are not health data: they live in the key-value store, not behind the FHIR door.
The page is still a portal page (the frame's sign-in, CSRF and layout).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from hygie.auth.accounts import (
    Account,
    AccountError,
    AccountService,
    InvalidAccountData,
    InvalidCode,
    LastSignInMethod,
    PasswordRejected,
    TooManyAttempts,
    TotpEnrolment,
    WrongPassword,
)
from hygie.auth.passwords import MIN_LENGTH
from hygie.web.ens.core import Ens
from hygie.web.oauth import OAuthWeb
from hygie.web.portal.door import PortalError
from hygie.web.portal.forms import FormErrors, Submitted
from hygie.web.portal.session import Visitor

__all__ = ["routes"]

PARIS = ZoneInfo("Europe/Paris")
HOME = "/ens/compte"
TOTP_PAGE = "/ens/compte/double-authentification"
_TITLE = "Connexion et sécurité"


def _moment(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, PARIS).strftime("%d/%m/%Y à %H:%M")


def _qr_svg(text: str) -> str:
    """The QR code of ``text`` as an SVG data URI, shown in an ``<img>`` (no inline style)."""
    import segno  # noqa: PLC0415 — only this page needs it

    svg: str = segno.make(text, error="m").svg_data_uri(scale=4)
    return svg


def _grouped(secret: str) -> str:
    """The secret in groups of four, as authenticator apps accept it typed by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def routes(ens: Ens) -> list[BaseRoute]:
    accounts: AccountService = ens.auth.accounts
    oauth: OAuthWeb = ens.auth.oauth

    def provider_label(issuer: str) -> str:
        for provider in oauth.providers:
            if getattr(provider, "issuer", None) == issuer:
                return str(getattr(provider, "label", "") or issuer)
        return issuer

    async def own_account(visitor: Visitor) -> Account:
        """The signed-in account, read afresh: the holder's own, whatever space is shown."""
        account = await accounts.get(visitor.subject.account_id)
        if account is None or not account.active:
            raise PortalError(403, "Votre compte n’est plus actif. Reconnectez-vous.")
        return account

    def identities(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
        return [
            {"issuer": issuer, "subject": subject, "label": provider_label(issuer), "key": f"{n}"}
            for n, (issuer, subject) in enumerate(pairs)
        ]

    async def home(request: Request, visitor: Visitor, _: Submitted | None) -> Response:
        account = await own_account(visitor)
        sign_ins = [
            {
                "when": _moment(s.at),
                "label": s.label,
                "via": provider_label(s.via) if s.via else "",
            }
            for s in await accounts.sign_ins(account.id)
        ]
        linked = identities(account.federated)
        return await ens.page(
            request,
            visitor,
            "ens/compte/index.html",
            title=_TITLE,
            account=account,
            linked=linked,
            refused=identities(account.refused_federated),
            # the last way in stays: no password and one identity
            may_unlink=account.has_password or len(linked) > 1,
            sign_ins=sign_ins,
            waiting=await accounts.pending_totp(account.id) is not None,
        )

    # -- password ------------------------------------------------------------------------------------

    async def password_form(
        request: Request,
        visitor: Visitor,
        _: Submitted | None = None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        account = await own_account(visitor)
        return await ens.page(
            request,
            visitor,
            "ens/compte/mot-de-passe.html",
            status=status,
            title="Changer mon mot de passe",
            account=account,
            errors=errors or FormErrors(),
            min_length=MIN_LENGTH,
        )

    async def change_password(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        account = await own_account(visitor)
        # passwords are taken as typed (spaces count), never stripped nor shown again
        current = form.values.get("mot_de_passe_actuel", "")
        new = form.values.get("nouveau_mot_de_passe", "")
        again = form.values.get("confirmation", "")
        errors = FormErrors()
        if not account.has_password:
            raise PortalError(
                409, "Votre compte n’a pas de mot de passe : vous vous connectez par un service."
            )
        if not current:
            errors.add("mot_de_passe_actuel", "Saisissez votre mot de passe actuel.")
        if not new:
            errors.add("nouveau_mot_de_passe", "Saisissez un nouveau mot de passe.")
        elif new != again:
            errors.add("confirmation", "Les deux saisies du nouveau mot de passe ne sont pas identiques.")
        if not errors:
            try:
                await accounts.change_password(account.id, current, new)
            except (WrongPassword, TooManyAttempts) as error:
                errors.add("mot_de_passe_actuel", " ".join(error.messages))
            except PasswordRejected as error:
                errors.add("nouveau_mot_de_passe", " ".join(error.messages))
        if errors:
            await ens.failed(visitor, form)
            return await password_form(request, visitor, errors=errors, status=422)
        # every session of the account ended: this browser gets a new one and stays signed in
        fresh = await oauth.renew_session(visitor.session)
        await ens.forms.done(visitor.session.session_id, form, HOME)
        await ens.forms.flash(
            fresh.session_id,
            "Votre mot de passe est changé. Vos autres connexions ont été fermées ; "
            "un courriel vous le confirme.",
        )
        return oauth.set_cookie(RedirectResponse(HOME, status_code=303), fresh)

    # -- second factor ------------------------------------------------------------------------------

    async def totp_start(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        account = await own_account(visitor)
        try:
            await accounts.start_totp(account.id)
        except InvalidAccountData as error:
            raise PortalError(409, " ".join(error.messages)) from error
        return await ens.done(visitor, form, TOTP_PAGE)

    async def totp_page(
        request: Request,
        visitor: Visitor,
        _: Submitted | None = None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        account = await own_account(visitor)
        if account.has_totp:
            return RedirectResponse(HOME, status_code=303)
        waiting: TotpEnrolment | None = await accounts.pending_totp(account.id)
        if waiting is None and errors is None:
            # nothing waits (never begun, or lapsed): the overview offers to begin
            return RedirectResponse(HOME, status_code=303)
        return await ens.page(
            request,
            visitor,
            "ens/compte/double-authentification.html",
            status=status,
            title="Activer la double authentification",
            qr=_qr_svg(waiting.uri) if waiting else None,
            secret=_grouped(waiting.secret) if waiting else "",
            until=_moment(waiting.until) if waiting else "",
            login=account.login,
            errors=errors or FormErrors(),
        )

    async def totp_confirm(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        account = await own_account(visitor)
        code = form.get("code").replace(" ", "")
        errors = FormErrors()
        if not code:
            errors.add("code", "Saisissez le code à 6 chiffres affiché par votre application.")
        else:
            try:
                await accounts.confirm_totp(account.id, code)
            except InvalidCode as error:
                errors.add("code", " ".join(error.messages))
            except InvalidAccountData as error:
                errors.add("code", " ".join(error.messages))
        if errors:
            await ens.failed(visitor, form)
            return await totp_page(request, visitor, errors=errors, status=422)
        return await ens.done(
            visitor,
            form,
            HOME,
            "La double authentification est activée : à votre prochaine connexion, "
            "le code de votre application vous sera demandé.",
        )

    async def totp_off_form(
        request: Request,
        visitor: Visitor,
        _: Submitted | None = None,
        *,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> Response:
        account = await own_account(visitor)
        if not account.has_totp:
            return RedirectResponse(HOME, status_code=303)
        return await ens.page(
            request,
            visitor,
            "ens/compte/desactiver.html",
            status=status,
            title="Désactiver la double authentification",
            account=account,
            errors=errors or FormErrors(),
        )

    async def totp_off(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        account = await own_account(visitor)
        password = form.values.get("mot_de_passe", "")
        code = form.get("code").replace(" ", "")
        errors = FormErrors()
        if not password:
            errors.add("mot_de_passe", "Saisissez votre mot de passe.")
        if not code:
            errors.add("code", "Saisissez le code à 6 chiffres affiché par votre application.")
        if not errors:
            try:
                await accounts.disable_totp(account.id, password, code)
            except (WrongPassword, TooManyAttempts) as error:
                errors.add("mot_de_passe", " ".join(error.messages))
            except InvalidCode as error:
                errors.add("code", " ".join(error.messages))
            except InvalidAccountData as error:
                raise PortalError(409, " ".join(error.messages)) from error
        if errors:
            await ens.failed(visitor, form)
            return await totp_off_form(request, visitor, errors=errors, status=422)
        return await ens.done(visitor, form, HOME, "La double authentification est désactivée.")

    # -- identity providers ---------------------------------------------------------------------------

    def chosen(pairs: tuple[tuple[str, str], ...], form: Submitted) -> tuple[str, str]:
        """The identity a button names (by its rank in the list the page showed)."""
        key = form.get("identite")
        if not key.isdigit() or int(key) >= len(pairs):
            raise PortalError(409, "Ce service d’identification n’est plus lié à votre compte.")
        return pairs[int(key)]

    async def unlink(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        account = await own_account(visitor)
        issuer, subject = chosen(account.federated, form)
        if form.get("fournisseur") != issuer:  # the list changed since the page was shown
            raise PortalError(409, "La liste de vos services d’identification a changé : rechargez la page.")
        try:
            await accounts.unlink_federated(account.id, issuer, subject)
        except (LastSignInMethod, InvalidAccountData) as error:
            raise PortalError(409, " ".join(error.messages)) from error
        return await ens.done(
            visitor,
            form,
            HOME,
            f"« {provider_label(issuer)} » est retiré de votre compte : il ne permet plus de vous connecter.",
        )

    async def allow(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        assert form is not None
        account = await own_account(visitor)
        issuer, subject = chosen(account.refused_federated, form)
        if form.get("fournisseur") != issuer:
            raise PortalError(409, "La liste de vos services d’identification a changé : rechargez la page.")
        try:
            await accounts.allow_federated(account.id, issuer, subject)
        except AccountError as error:
            raise PortalError(409, " ".join(error.messages)) from error
        return await ens.done(
            visitor,
            form,
            HOME,
            f"« {provider_label(issuer)} » pourra de nouveau vous connecter : "
            "il sera relié à votre compte à votre prochaine connexion par ce service.",
        )

    async def password(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            return await password_form(request, visitor)
        return await change_password(request, visitor, form)

    async def totp(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            return await totp_page(request, visitor)
        return await totp_confirm(request, visitor, form)

    async def totp_disable(request: Request, visitor: Visitor, form: Submitted | None) -> Response:
        if form is None:
            return await totp_off_form(request, visitor)
        return await totp_off(request, visitor, form)

    both = ("GET", "POST")
    return [
        ens.route(HOME, home),
        ens.route("/ens/compte/mot-de-passe", password, methods=both),
        ens.route("/ens/compte/double-authentification/activer", totp_start, methods=("POST",)),
        ens.route(TOTP_PAGE, totp, methods=both),
        ens.route("/ens/compte/double-authentification/desactiver", totp_disable, methods=both),
        ens.route("/ens/compte/identites/retirer", unlink, methods=("POST",)),
        ens.route("/ens/compte/identites/autoriser", allow, methods=("POST",)),
    ]
