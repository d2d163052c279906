"""The `credit` command. Subcommands are imported only when run, so `credit score` stays light."""

from __future__ import annotations

import importlib

import click

from app import __version__

# command name -> ("module:attribute" of a click.Command, one-line help shown by `credit --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("app.cli.data:generate_command", "Write synthetic Home Credit CSV files."),
    "ingest": ("app.cli.data:ingest_command", "Import the Home Credit CSVs and build features."),
    "ingest-csv": ("app.cli.data:ingest_csv_command", "Import any one-table credit CSV."),
    "train": ("app.cli.model:train_command", "Nested CV of tuned LightGBM and a scorecard; calibrated champion."),
    "compile": ("app.cli.model:compile_command", "Compile the model to a native library."),
    "promote": ("app.cli.promote:promote_command", "Make the challenger the champion (or --rollback)."),
    "score": ("app.cli.sql:score_command", "Score one client."),
    "sql": ("app.cli.sql:sql_command", "Run SQL with score() and friends available."),
    "explain": ("app.cli.model:explain_command", "Explain one client's score (SHAP, reasons)."),
    "reasons": ("app.cli.reasons:reasons_command", "Every refused client's reasons into a CSV or Parquet file."),
    "serve": ("app.cli.serve:serve_command", "Run the HTTP API."),
    "ui": ("ui.main:ui_command", "Run the dashboard."),
    "ui-account": ("ui.main:ui_account_command", "Print a dashboard account line (name:role:hash)."),
    "drift": ("app.cli.monitoring:drift_command", "Drift verdict (stable/watch/act) over a window of the log."),
    "outcomes": ("app.cli.monitoring:outcomes_command", "Import or simulate observed outcomes."),
    "performance": ("app.cli.monitoring:performance_command", "Realised performance from outcomes."),
    "fairness": ("app.cli.monitoring:fairness_command", "Fairness of the live decisions (four-fifths rule)."),
    "traffic": ("app.cli.monitoring:traffic_command", "Replay scoring requests against the API."),
    "partition": ("app.cli.distributed:partition_command", "Split the Home Credit CSVs into Parquet partitions."),
    "features": ("app.cli.distributed:features_command", "Build features on a Dask cluster (Parquet + SQLite)."),
    "logs": ("app.cli.distributed:logs_command", "Export replicas' logs to Parquet; merge them into one store."),
    "export": ("app.cli.batch:export_command", "Export features as partitioned Parquet."),
    "score-batch": ("app.cli.batch:score_batch_command", "Score Parquet partitions on a Dask cluster."),
    "bench": ("app.cli.bench:bench_command", "Run the benchmark suite."),
    "demo": ("app.cli.demo:demo_command", "Generate, ingest, train, compile, then serve API + UI."),
    "letter": ("app.cli.rights:letter_command", "A decision letter: reasons, what would change it, rights."),
    "review": ("app.cli.rights:review_command", "Human review of a decision: request, then uphold or overturn."),
    "override": ("app.cli.rights:override_command", "Override a decision when it is made (four eyes above a PD)."),
    "rights-export": ("app.cli.rights:rights_export_command", "Everything held about a client's decisions, as JSON."),
    "counterfactual": ("app.cli.rights:counterfactual_command", "What would change a refusal into an acceptance."),
}


class LazyGroup(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="credit")
def cli() -> None:
    """Prêt à dépenser: credit default scoring inside SQLite."""


def main() -> None:
    from app.progress import install

    install()  # progress bars on a terminal, plain lines in log files (before any command module is imported)
    cli()


if __name__ == "__main__":
    main()
