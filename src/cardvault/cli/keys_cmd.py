"""Master-key custody: Shamir shares for the custodians."""

from __future__ import annotations

from typing import Annotated

import typer

from cardvault.cli.context import emit, handles_errors, state
from cardvault.commandline import App
from cardvault.services.system.runtime import local_keystore

app = App(help="Master-key custody.")


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
