"""What people's credentials and sign-ins leave behind: audit entries, and word to gateways
when logins end (their live sessions end with them)."""

from __future__ import annotations

from sekisho.domain.events import (
    IdpSignInRefused,
    LoggedOut,
    SignedIn,
    SignInFailed,
    SignInLocked,
    SignInRefused,
    SignInThrottled,
    TotpSetupRefused,
    TotpSetupShown,
    UserEnrolled,
)
from sekisho.domain.timespec import iso
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event

TOKENS_REVOKED = "tokens.revoked"  # gateways end the live sessions those logins opened


def enrolled(fx: EffectContext, e: UserEnrolled) -> list[Event]:
    status = "re-enrolled" if e.again else "enrolled"
    entry = AuditEvent(
        "user.enrolled", e.actor.name, e.actor.source, subject=e.user, detail={"status": status}
    )
    fx.audit(e.at, entry)
    if not e.again:
        return []
    return [Event(TOKENS_REVOKED, e.at, user=e.user, data={"reason": "credentials re-issued"})]


def signed_in(fx: EffectContext, e: SignedIn) -> list[Event]:
    detail: dict[str, str | int | bool | None] = {"expires": iso(e.expires_at)}
    if e.idp is not None:
        detail |= {
            "via": "oidc",
            "issuer": e.idp.issuer,
            "idp_subject": e.idp.subject,
            "auth_time": iso(e.idp.auth_time) if e.idp.auth_time else None,
            "amr": " ".join(e.idp.amr) or None,
            "acr": e.idp.acr,
        }
    fx.audit(e.at, AuditEvent("auth.login", e.user, e.source, subject=e.user, detail=detail))
    return []


def totp_setup_shown(fx: EffectContext, e: TotpSetupShown) -> list[Event]:
    fx.audit(e.at, AuditEvent("auth.totp_setup", e.user, e.source, subject=e.user))
    return []


def refused_as(action: str) -> Handler:
    """A refusal's entry: denied, naming the user only if someone is enrolled by that name."""

    def refused(fx: EffectContext, e: SignInRefused) -> list[Event]:
        entry = AuditEvent(
            action,
            e.user or "unknown",
            e.source[:256],
            outcome="denied",
            subject=e.user,
            detail={"reason": e.reason},
        )
        fx.audit(e.at, entry)
        return []

    return refused


def logged_out(fx: EffectContext, e: LoggedOut) -> list[Event]:
    fx.audit(e.at, AuditEvent("auth.logout", e.user, e.source, subject=e.holder))
    data = {"token_id": e.token_id, "reason": "logged out"}
    return [Event(TOKENS_REVOKED, e.at, user=e.user, data=data)]


HANDLERS: dict[type, Handler] = {
    UserEnrolled: enrolled,
    SignedIn: signed_in,
    TotpSetupShown: totp_setup_shown,
    SignInThrottled: refused_as("auth.login_refused"),
    SignInFailed: refused_as("auth.login_failed"),
    SignInLocked: refused_as("auth.login_locked"),
    TotpSetupRefused: refused_as("auth.totp_setup_refused"),
    IdpSignInRefused: refused_as("auth.sso_refused"),
    LoggedOut: logged_out,
}
