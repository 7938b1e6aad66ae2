import pytest
from sqlalchemy import inspect

from lakebox.errors import SettingsError
from lakebox.metadata import MetadataDB
from lakebox.metadata._migrations import all_migrations


def _check_migrates(url):
    db = MetadataDB(url)
    versions = db.migrate()
    expected = {component: ms[-1].version for component, ms in all_migrations().items()}
    assert versions == expected
    assert db.migrate() == expected  # idempotent
    names = set(inspect(db.engine).get_table_names())
    assert {"lakebox_schema_versions", "catalog_tables", "catalog_tags"} <= names
    db.dispose()


def test_sqlite_migrations(tmp_path):
    _check_migrates(f"sqlite:///{tmp_path / 'meta.db'}")


def test_postgresql_migrations(postgres_url):
    _check_migrates(postgres_url)


def test_bad_url_names_the_setting():
    with pytest.raises(SettingsError, match=r"\[metadata\] url"):
        MetadataDB("notadb://x").migrate()


def test_unreachable_postgres_names_the_setting():
    db = MetadataDB("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(SettingsError, match="database server is running"):
        db.migrate()
