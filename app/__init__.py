"""Prêt à dépenser: credit default scoring inside SQLite."""

from pathlib import Path

__version__ = "0.1.0"

# the SQL scripts: app/sql is a link to the repository's sql/ folder, and a copy of it in an installed wheel
SQL_DIR = Path(__file__).parent / "sql"
