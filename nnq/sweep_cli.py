"""`nnq sweep`: submit a hyperparameter sweep and follow, show, cancel or promote it.

`nnq sweep SWEEP.json [--wait]` is short for `nnq sweep submit SWEEP.json [--wait]`: a first
word that names no command is taken as the sweep file.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from nnq import sweep_view
from nnq.follow import report_sweep, watch_sweep
from nnq.inputs import read_json
from nnq.remote import api, call
from nnq.tables import format_value
from nnq.terminal import fail, say

DEFAULT_COMMAND = "submit"


class SubmitByDefault(TyperGroup):
    """A group whose first argument falls back to the `submit` command's sweep file."""

    def resolve_command(self, ctx, args):
        if args and self.get_command(ctx, args[0]) is None:
            args = [DEFAULT_COMMAND, *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=SubmitByDefault, no_args_is_help=True,
                  context_settings={"ignore_unknown_options": True},
                  help="Hyperparameter sweeps. `nnq sweep SWEEP.json [--wait]` submits, like "
                       "`nnq sweep submit`.")


@app.command()
def submit(path: Path = typer.Argument(..., metavar="SWEEP.json",
                                       help="a sweep request (JSON, see README)"),
           wait: bool = typer.Option(False, "--wait",
                                     help="follow the sweep, then print the ranked trials"),
           idempotency_key: str | None = typer.Option(
               None, "--idempotency-key", help="the same key returns the same sweep")) -> None:
    """Submit a sweep; exit 1 after --wait if it failed or was cancelled."""
    body = read_json(path)
    client = api()
    sweep = call(client.submit_sweep, body, idempotency_key=idempotency_key)
    say(f"submitted sweep {sweep.id} ({sweep.status}, "
        f"{sweep_view.counts_line(sweep.to_dict())})")
    if not wait:
        say(f"follow it with: nnq sweep show {sweep.id}")
        return
    try:
        sweep = call(watch_sweep, client, sweep.id)
    except KeyboardInterrupt:
        raise fail(f"stopped watching; sweep {sweep.id} goes on "
                   f"(nnq sweep show {sweep.id})") from None
    report_sweep(sweep.to_dict(), require_success=True)


@app.command()
def show(sweep_id: str = typer.Argument(..., metavar="ID", help="sweep id")) -> None:
    """The sweep's trials ranked by its metric, the best so far, and which parameters
    mattered (Optuna's importances over the succeeded trials)."""
    client = api()
    report_sweep(call(client.sweep, sweep_id).to_dict())
    for line in sweep_view.importances_lines(call(client.sweep_importances, sweep_id)):
        say(line)


@app.command()
def cancel(sweep_id: str = typer.Argument(..., metavar="ID", help="sweep id")) -> None:
    """Cancel a sweep and its queued and running trials."""
    sweep = call(api().cancel_sweep, sweep_id)
    say(f"sweep {sweep.id}: {sweep.status}; {sweep_view.counts_line(sweep.to_dict())}")


@app.command()
def promote(sweep_id: str = typer.Argument(..., metavar="ID", help="sweep id"),
            alias: str = typer.Argument(..., metavar="ALIAS", help="the alias to point")) -> None:
    """Point an alias at the best trial's model."""
    out = call(api().promote, sweep_id, alias)
    say(f"alias {out.alias} -> model {out.model_id} (sweep {out.sweep_id}, "
        f"trial {out.trial.index}, job {out.trial.job_id}, "
        f"val_acc {format_value(out.trial.val_acc)})")
