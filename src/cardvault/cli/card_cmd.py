"""Cards: issue, enrol, show, revoke, certificates."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cardvault.cli import prompts
from cardvault.cli.context import (
    OrgCode,
    emit,
    handles_errors,
    operator,
    progress,
    read_secret,
    read_stdin_json,
    runtime,
    state,
)
from cardvault.commandline import App
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.cards import enrolment, issuance
from cardvault.services.cards import state as cards
from cardvault.services.pki import expiry, renewal, suspension
from cardvault.services.system.runtime import Runtime

app = App(help="Virtual smartcards.")


@app.command("issue")
@handles_errors
def issue(
    ctx: typer.Context,
    org: OrgCode,
    user_id: Annotated[str, typer.Option("--user-id", help="The holder's 12-digit user id.")],
    algorithm: Annotated[
        str | None,
        typer.Option(help="rsa2048, rsa3072 or ecp256 (default: the organisation's policy)."),
    ] = None,
    external_ca: Annotated[
        bool,
        typer.Option(
            "--external-ca", help="Export CSRs for an external CA instead of certifying here."
        ),
    ] = False,
    passcode_stdin: Annotated[
        bool, typer.Option("--passcode-stdin", help="Read the issuance passcode from stdin.")
    ] = False,
) -> None:
    """Issue a card: keys generated and sealed here, certified, status 'issued'.

    The issuance passcode (typed twice at a terminal) is checked before any key is made."""
    passcode = prompts.new_secret(
        "Issuance passcode", from_stdin=passcode_stdin, check=issuance.check_issuance_passcode
    )
    with runtime(ctx) as rt:
        card = issuance.issue_card(
            rt,
            operator(),
            issuance.IssueRequest(
                organisation=org,
                user_id=user_id,
                issuance_passcode=passcode,
                key_algorithm=algorithm,
                external_ca=external_ca,
            ),
            generating=lambda: progress(ctx, "Generating the card's two key pairs …"),
        )
    data = {
        "serial": card.serial,
        "status": card.status,
        "key_algorithm": card.key_algorithm,
        "certificates": card.certificates,
        "csrs": card.csrs,
    }
    emit(ctx, data, lambda: _issued_text(card))


def _issued_text(card: issuance.IssuedCard) -> str:
    lines = [f"Issued card {card.serial} ({card.key_algorithm}), status {card.status}."]
    lines += [f"  {c['usage']}: {c['subject']} serial {c['serial']}" for c in card.certificates]
    if card.csrs:
        lines.append(
            "  Certificate requests waiting for the external CA: "
            + ", ".join(c["usage"] for c in card.csrs)
            + f" (cardvault ca export-csr {card.serial} USAGE)"
        )
    return "\n".join(lines)


@app.command("enrol")
@handles_errors
def enrol(
    ctx: typer.Context,
    serial: str,
    stdin_json: Annotated[
        bool,
        typer.Option(
            "--stdin-json",
            help='Read {"issuance_passcode", "passcode", "questions": '
            '[{"question", "answer"} x3], "email", "phone", "recovery_code"} from stdin.',
        ),
    ] = False,
) -> None:
    """Enrol the holder: strong passcode and three security questions; the card becomes active.

    At a terminal it asks for each (questions from the configured list, or the holder's own)
    and says why it asks again."""
    with runtime(ctx) as rt:
        if stdin_json:
            req = _enrol_request(serial, read_stdin_json())
        else:
            req = _prompt_enrolment(rt, serial)
        done = enrolment.enrol(rt, operator(), req)
    out: JsonObject = {"serial": done.serial, "status": done.status}
    text = f"Card {done.serial} is enrolled and {done.status}."
    if done.recovery_code:
        out["recovery_code"] = done.recovery_code
        text += f"\nRecovery code (shown once, keep it safe): {done.recovery_code}"
    emit(ctx, out, text)


def _enrol_request(serial: str, data: Any) -> enrolment.EnrolRequest:
    if not isinstance(data, dict):
        raise InvalidInput("The enrolment input must be a JSON object.")
    questions = data.get("questions")
    if not isinstance(questions, list) or not all(isinstance(q, dict) for q in questions):
        raise InvalidInput('"questions" must be a list of {"question", "answer"} objects.')
    for key in ("issuance_passcode", "passcode"):
        if not isinstance(data.get(key), str):
            raise InvalidInput(f'"{key}" must be a string.')
    answers = tuple(
        enrolment.SecurityAnswer(
            question=str(q.get("question", "")), answer=str(q.get("answer", ""))
        )
        for q in questions
    )
    return enrolment.EnrolRequest(
        serial=serial,
        issuance_passcode=data["issuance_passcode"],
        passcode=data["passcode"],
        answers=answers,
        email=data.get("email"),
        phone=data.get("phone"),
        recovery_code=bool(data.get("recovery_code", False)),
    )


def _prompt_enrolment(rt: Runtime, serial: str) -> enrolment.EnrolRequest:
    if not sys.stdin.isatty():
        raise InvalidInput(
            "Cannot ask for the enrolment details: stdin is not a terminal.",
            remedy="Give them as JSON on stdin with --stdin-json.",
        )
    form = enrolment.enrolment_form(rt, serial)
    typer.echo(f"Enrolling card {form.serial} for {form.holder}.", err=True)
    issuance_passcode = read_secret("Issuance passcode", from_stdin=False)
    passcode = prompts.new_secret("New passcode", from_stdin=False, check=form.check_passcode)
    questions = prompts.security_questions(form.questions, passcode)
    return enrolment.EnrolRequest(
        serial=serial,
        issuance_passcode=issuance_passcode,
        passcode=passcode,
        answers=tuple(
            enrolment.SecurityAnswer(question=q["question"], answer=q["answer"]) for q in questions
        ),
    )


@app.command("show")
@handles_errors
def show(ctx: typer.Context, serial: str) -> None:
    """Show a card: status, holder, its certificates in one line each, key slots and methods
    (the certificates themselves: card certs)."""
    with runtime(ctx) as rt:
        view = cards.show(rt, serial)

    def text() -> str:
        c, h = view.card, view.holder
        lines = [
            f"Card {c.serial}: {c.status} ({c.key_algorithm})",
            f"Holder: {h.name} ({h.user_id}) <{h.email or 'no email'}>",
        ]
        lines += [
            f"Certificate {x.usage}: {x.subject} serial {x.serial} valid to "
            f"{x.not_after.isoformat()} [{x.status}]"
            for x in view.certificates
        ]
        lines.append("Key slots: " + (", ".join(s.name for s in view.slots) or "none"))
        lines += [f"Method {a.method}: {a.lookup_key}" for a in view.associations]
        return "\n".join(lines)

    emit(ctx, view.as_json(), text)


@app.command("certs")
@handles_errors
def certs(ctx: typer.Context, serial: str) -> None:
    """Print the card's valid certificates as PEM."""
    with runtime(ctx) as rt:
        pems = cards.certificates_pem(rt, serial)
    emit(ctx, pems, lambda: "".join(pems.values()))


@app.command("revoke")
@handles_errors
def revoke(
    ctx: typer.Context,
    serial: str,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
    code: Annotated[
        str,
        typer.Option(
            "--code",
            help="The RFC 5280 reason the CRL and OCSP give: unspecified, keyCompromise, "
            "affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.",
        ),
    ] = "unspecified",
) -> None:
    """Revoke a card: its keys are destroyed (crypto-shredding), its certificates are
    revoked on the CRL and OCSP at once, the audit trail stays."""
    with runtime(ctx) as rt:
        card = issuance.revoke_card(rt, operator(), serial, reason=reason, reason_code=code)
    emit(
        ctx,
        {"serial": card.serial, "status": card.status},
        f"Card {card.serial} is revoked; its keys are destroyed.",
    )


@app.command("suspend")
@handles_errors
def suspend(
    ctx: typer.Context,
    serial: str,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
) -> None:
    """Suspend a card: its certificates go on hold (certificateHold on the CRL and OCSP) and
    it cannot sign in until `cardvault card resume`; its keys stay."""
    _hold(ctx, suspension.suspend, serial, reason, "is suspended; its certificates are on hold")


@app.command("resume")
@handles_errors
def resume(
    ctx: typer.Context,
    serial: str,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
) -> None:
    """Lift a card's suspension: back to its earlier status, its certificates good again."""
    _hold(ctx, suspension.resume, serial, reason, "is {status} again; its certificates are good")


def _hold(
    ctx: typer.Context, change: Callable[..., Any], serial: str, reason: str, said: str
) -> None:
    with runtime(ctx) as rt:
        card = change(rt, operator(), serial, reason=reason)
    text = f"Card {card.serial} " + said.format(status=card.status) + "."
    emit(ctx, {"serial": card.serial, "status": card.status}, text)


@app.command("renew")
@handles_errors
def renew(ctx: typer.Context, serial: str) -> None:
    """New certificates for the card's current keys (the old ones revoked as superseded);
    new keys come when the holder runs `cardvault-agent renew`."""
    with runtime(ctx) as rt:
        result = renewal.recertify(rt, operator(), serial)
    emit(
        ctx,
        {"serial": result.serial, "new_keys": result.new_keys, "certificates": result.certificates},
        f"Card {result.serial}: new certificates issued; the old ones are revoked (superseded).",
    )


@app.command("expiring")
@handles_errors
def expiring(
    ctx: typer.Context,
    org: OrgCode,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (as `cardvault --json`).")
    ] = False,
) -> None:
    """Cards of the organisation whose certificates expire within its renew_days."""
    if json_output:
        state(ctx).json = True
    with runtime(ctx) as rt:
        rows = expiry.report(rt, org_code=org)
    data = [r.as_dict() for r in rows]
    emit(
        ctx,
        data,
        lambda: (
            "\n".join(
                f"{r.serial}  {r.user_id}  {r.name}  expires {r.expires_at:%Y-%m-%d} "
                f"({r.days_left} days){'  holder told' if r.notified_at else ''}"
                for r in rows
            )
            or f"No card of {org.upper()} expires within its renewal window."
        ),
    )
