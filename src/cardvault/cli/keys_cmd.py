"""Master-key custody: Shamir shares for the custodians."""

from __future__ import annotations

from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, operator, progress, runtime, state
from cardvault.commandline import App
from cardvault.errors import InvalidInput
from cardvault.services.system.runtime import local_keystore

app = App(help="Master-key custody and key rotation.")


@app.command("split")
@handles_errors
def split(
    ctx: typer.Context,
    shares: Annotated[int, typer.Option("--shares", help="How many custodians (N).")],
    threshold: Annotated[int, typer.Option("--threshold", help="How many are needed (K).")],
    keep_local_key: Annotated[
        bool,
        typer.Option(
            "--keep-local-key", help="Keep the key on disk too (the service stays unsealed)."
        ),
    ] = False,
) -> None:
    """Print K-of-N shares of the master key and (by default) remove it from disk."""
    store = local_keystore(state(ctx).settings)
    parts = store.split(shares=shares, threshold=threshold, remove_local=not keep_local_key)
    sealed = not keep_local_key

    def text() -> str:
        lines = [
            f"{threshold} of these {shares} shares rebuild the master key. Give one to "
            "each custodian; none of them is stored here.",
            "",
        ]
        lines += [f"  {p}" for p in parts]
        if sealed:
            lines += ["", "The key is no longer on disk: after a restart run `cardvault unseal`."]
        return "\n".join(lines)

    emit(ctx, {"shares": parts, "threshold": threshold, "sealed": sealed}, text)


@app.command("rotate-master")
@handles_errors
def rotate_master(
    ctx: typer.Context,
    shares: Annotated[
        int | None, typer.Option("--shares", help="Split key: shares of the new key (N).")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", help="Split key: how many are needed (K).")
    ] = None,
) -> None:
    """Rotate the master key while the service runs: a new version, every card record and
    key re-sealed under it, the old one retired. Run it again to resume after a crash."""
    from cardvault.services.rotation import master

    settings = state(ctx).settings
    split = settings.key_provider == "local" and not local_keystore(settings).key_file.exists()
    if split and (shares is None or threshold is None):
        raise InvalidInput(
            "The master key is split among custodians: give --shares and --threshold, so "
            "that the new key's shares are printed before anything is sealed under it."
        )
    with runtime(ctx) as rt:
        just_begun = False
        if split and len(master.versions(rt)) == 1:
            assert shares is not None and threshold is not None
            master.begin(rt, operator())
            just_begun = True
            store = local_keystore(settings)
            parts = store.split(shares=shares, threshold=threshold, remove_local=False)
            progress(ctx, f"New master key: {threshold} of these {shares} shares rebuild it.")
            for part in parts:
                progress(ctx, f"  {part}")

        def show(step: master.Progress) -> None:
            if step.finished:
                progress(ctx, f"{step.what}: {step.resealed} re-sealed of {step.seen}")
            elif step.seen % 1000 == 0:
                progress(ctx, f"{step.what}: {step.seen} looked at …")

        done = master.rotate(rt, operator(), progress=show, just_begun=just_begun)
    emit(
        ctx,
        {
            "from_versions": list(done.from_versions),
            "to_version": done.to_version,
            "resealed": done.resealed,
            "resumed": done.resumed,
        },
        f"Master key now version {done.to_version}"
        f"{' (resumed)' if done.resumed else ''}: {done.resealed} blobs re-sealed; "
        f"version(s) {', '.join(map(str, done.from_versions))} retired.",
    )


@app.command("rotation-status")
@handles_errors
def rotation_status(ctx: typer.Context) -> None:
    """Which master key versions are in use, and how many blobs each older one still seals."""
    from cardvault.services.rotation import master

    with runtime(ctx) as rt:
        versions = master.versions(rt)
        left = master.pending(rt) if len(versions) > 1 else {}
    under_way = len(versions) > 1
    emit(
        ctx,
        {"versions": list(versions), "rotation_under_way": under_way, "pending": left},
        lambda: (
            f"Master key version {versions[-1]}."
            if not under_way
            else "A rotation is under way (run `cardvault keys rotate-master` to finish it):\n"
            + "\n".join(f"  {k}: {v} still under an older version" for k, v in left.items())
        ),
    )


@app.command("transport-list")
@handles_errors
def transport_list(ctx: typer.Context) -> None:
    """The published transport keys, oldest first (* the one cardvault's clients use)."""
    from cardvault.services.rotation import transport

    with runtime(ctx) as rt:
        found = transport.listing(rt)
    emit(
        ctx,
        [{"kid": k.kid, "alg": k.alg, "preferred": k.preferred} for k in found],
        lambda: "\n".join(f"{'*' if k.preferred else ' '} {k.kid}  {k.alg}" for k in found),
    )


@app.command("transport-add")
@handles_errors
def transport_add(
    ctx: typer.Context,
    rsa: Annotated[bool, typer.Option("--rsa", help="An RSA-3072 key (default: P-256).")] = False,
) -> None:
    """Publish a new transport key; the old ones are still accepted until retired."""
    from cardvault.services.rotation import transport

    with runtime(ctx) as rt:
        key = transport.add(rt, operator(), ecdh=not rsa)
    emit(
        ctx,
        {"kid": key.kid, "alg": key.alg},
        f"Published transport key {key.kid} ({key.alg}); retire the old one once clients "
        "have fetched the JWKS again.",
    )


@app.command("transport-retire", context_settings={"ignore_unknown_options": True})
@handles_errors
def transport_retire(ctx: typer.Context, kid: str) -> None:
    """Stop publishing and accepting a transport key (not the last one of its kind).

    A kid is a base64url thumbprint and may begin with "-": it is taken as the kid, not as an
    option the command does not have.
    """
    from cardvault.services.rotation import transport

    with runtime(ctx) as rt:
        transport.retire(rt, operator(), kid)
    emit(ctx, {"kid": kid, "retired": True}, f"Transport key {kid} retired.")


@app.command("rotate-audit")
@handles_errors
def rotate_audit(ctx: typer.Context) -> None:
    """Replace the audit signing key; what the old one signed still verifies."""
    from cardvault.services.rotation import audit_key

    with runtime(ctx) as rt:
        old, new = audit_key.rotate(rt, operator())
    emit(
        ctx,
        {"old_public_key": old, "new_public_key": new},
        f"Audit key rotated: {old[:16]}… is kept to verify what it signed; {new[:16]}… signs "
        "from now on.",
    )
