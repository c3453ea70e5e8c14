"""``python -m spa_version`` runs the CLI."""

from spa_version.cli import run

run()
