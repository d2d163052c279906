"""The `credit` command. Subcommands are imported only when run, so `credit score` stays light."""

from __future__ import annotations

import importlib

import click

from app import __version__

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "generate": "app.data.synthetic:generate_command",
    "ingest": "app.data.ingest:ingest_command",
    "ingest-csv": "app.data.ingest_csv:ingest_csv_command",
    "train": "app.model.train:train_command",
    "compile": "app.model.compile:compile_command",
    "score": "app.sqlcli:score_command",
    "sql": "app.sqlcli:sql_command",
    "explain": "app.model.explain:explain_command",
    "serve": "app.server:serve_command",
    "ui": "ui.main:ui_command",
    "drift": "app.drift:drift_command",
    "traffic": "app.traffic:traffic_command",
    "export": "app.batch:export_command",
    "score-batch": "app.batch:score_batch_command",
    "bench": "app.bench:bench_command",
    "demo": "app.demo:demo_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="credit")
def cli() -> None:
    """Prêt à dépenser: credit default scoring inside SQLite."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
