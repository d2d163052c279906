"""Prêt à dépenser: credit default scoring inside SQLite."""

__version__ = "0.1.0"
