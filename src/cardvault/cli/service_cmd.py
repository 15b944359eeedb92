"""Service lifecycle: init, serve, unseal, seal, database upgrade."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, progress, state
from cardvault.commandline import App
from cardvault.errors import InvalidInput
from cardvault.services.system import bootstrap
from cardvault.services.system.runtime import local_keystore
from cardvault.store import db

MAX_SHARES = 255


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("unseal")(unseal)
    app.command("seal")(seal)
    db_app = App(help="Database schema.")
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")


@handles_errors
def init(
    ctx: typer.Context,
    demo: Annotated[
        bool,
        typer.Option(
            help="Also create a demo organisation: an RA user, an enrolled card holder and a "
            "card to enrol (their credentials go to DATA_DIR/demo-credentials.json)."
        ),
    ] = False,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing",
            help="Reuse an initialised data directory instead of refusing it (and say where "
            "its demo credentials are).",
        ),
    ] = False,
) -> None:
    """Create a data directory: master key, database, keys, TLS certificate, issuing CA."""
    settings = state(ctx).settings
    result = bootstrap.initialise(
        settings,
        actor=operator(),
        demo=demo,
        if_missing=if_missing,
        echo=lambda m: progress(ctx, m),
    )
    emit(
        ctx,
        {
            "data_dir": result.data_dir,
            "created": result.created,
            "demo": result.demo.as_json() if result.demo else {},
            "demo_credentials": result.demo_credentials,
        },
        lambda: _init_text(result),
    )


def _init_text(result: bootstrap.InitResult) -> str:
    where = (
        f"The demo credentials are in {result.demo_credentials} (readable only by you)."
        if result.demo_credentials
        else None
    )
    if not result.created:
        return "\n".join(
            filter(None, [f"Using the existing data directory {result.data_dir}.", where])
        )
    lines = [f"Initialised {result.data_dir}."]
    demo = result.demo
    if demo:
        lines += ["", f"Demo organisation: {demo.organisation}"]
        for title, p in (("RA user", demo.ra_user), ("Card holder", demo.card_holder)):
            lines += [
                f"{title}: {p.name} <{p.email}>, user id {p.user_id}",
                f"  card {p.card_serial} (active), passcode {p.passcode}",
                f"  authenticator (TOTP) secret {p.totp_secret}",
            ]
        bob = demo.to_enrol
        lines += [
            f"To enrol: {bob.name} <{bob.email}>, card {bob.card_serial} "
            f"(issued), issuance passcode {bob.issuance_passcode}",
            "",
            f"These demo credentials are also in {result.demo_credentials} (readable only by you).",
        ]
    return "\n".join(lines)


@handles_errors
def serve(
    ctx: typer.Context,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes on the one port (default: CARDVAULT_WORKERS, 1); "
            "above 1 needs CARDVAULT_REDIS_URL.",
        ),
    ] = None,
) -> None:
    """Serve the API, the vRA Manager (/ra) and the portal (/portal) over HTTPS; refuses to
    start sealed."""
    from cardvault.web.server import serve as run_server

    run_server(state(ctx).settings, workers=workers)  # its first JSON log line says where


@handles_errors
def unseal(
    ctx: typer.Context,
    shares_stdin: Annotated[
        bool, typer.Option("--shares-stdin", help="Read the shares from stdin, one per line.")
    ] = False,
) -> None:
    """Combine K key shares so the service can start (the key is kept in RAM-backed storage)."""
    store = local_keystore(state(ctx).settings)
    shares = _read_shares(shares_stdin)
    info = store.unseal(shares)
    emit(
        ctx,
        {"unsealed": True, "key_id": info.key_id},
        f"Unsealed master key {info.key_id}. Start the service with `cardvault serve`.",
    )


def _read_shares(from_stdin: bool) -> list[str]:
    if from_stdin or not sys.stdin.isatty():
        lines = [ln.strip() for ln in sys.stdin.read(64 * 1024).splitlines() if ln.strip()]
        if not lines:
            raise InvalidInput("No shares on stdin.")
        return lines[: MAX_SHARES + 1]
    import getpass

    shares: list[str] = []
    typer.echo("Type one share per prompt; an empty line when done.", err=True)
    while len(shares) <= MAX_SHARES:
        share = getpass.getpass(f"Share {len(shares) + 1}: ").strip()
        if not share:
            break
        shares.append(share)
    return shares


@handles_errors
def seal(ctx: typer.Context) -> None:
    """Forget the unsealed master key; the service will not start until unsealed again."""
    local_keystore(state(ctx).settings).seal()
    emit(ctx, {"sealed": True}, "Sealed.")


@handles_errors
def db_upgrade(ctx: typer.Context) -> None:
    """Apply database migrations (refuses a database from a newer cardvault)."""
    settings = state(ctx).settings
    engine = db.make_engine(settings.resolved_database_url)
    try:
        db.upgrade(engine)
        rev = db.current_revision(engine)
    finally:
        engine.dispose()
    emit(ctx, {"revision": rev}, f"Database at migration {rev}.")
