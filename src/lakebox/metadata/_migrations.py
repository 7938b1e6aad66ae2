"""Versioned schema migrations.

Each package that stores metadata owns a *component* with its own version sequence, declared as
``MIGRATIONS`` in a module listed in :data:`COMPONENT_MODULES`. A component's migrations run in
version order, each in its own transaction, and the applied version is recorded in
``lakebox_schema_versions``. Never edit a released migration: add the next version.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

__all__ = ["COMPONENT_MODULES", "Migration", "all_migrations"]

# Modules defining ``MIGRATIONS: list[Migration]``; order only matters for foreign keys.
COMPONENT_MODULES = [
    "lakebox.catalog._schema",
    "lakebox.events._schema",
    "lakebox.models._schema",
    "lakebox.jobs._store",
    "lakebox.features._schema",
    "lakebox.monitoring._schema",
    "lakebox.serving._store",
]


@dataclass(frozen=True)
class Migration:
    """One schema step of one component."""

    component: str
    version: int
    description: str
    upgrade: Callable[[Connection], None]


def all_migrations() -> dict[str, list[Migration]]:
    """Every component's migrations, sorted by version, checked to be 1, 2, 3, ..."""
    by_component: dict[str, list[Migration]] = {}
    for module_name in COMPONENT_MODULES:
        module = importlib.import_module(module_name)
        for migration in module.MIGRATIONS:
            by_component.setdefault(migration.component, []).append(migration)
    for component, migrations in by_component.items():
        migrations.sort(key=lambda m: m.version)
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise RuntimeError(f"Migrations of {component!r} must be numbered 1..n, got {versions}")
    return by_component
