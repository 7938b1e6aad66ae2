"""The MLflow registry-store plugin: URIs of the form ``lakebox:<database URI>``.

MLflow finds the builder through the ``mlflow.model_registry_store`` entry point for the
scheme ``lakebox``. The store is MLflow's own SQLAlchemy registry store on ``<database URI>``;
each change also writes an event to the outbox of a lakebox workspace, in the process that
made the change (a Python client, a notebook, or a worker of ``lakebox up`` / ``mlflow server``).

Which workspace's outbox, highest precedence first:

1. the ``lakebox_home`` query parameter of the URI
   (``lakebox:sqlite:////w/mlflow.db?lakebox_home=/w``), as :func:`registry_store_uri` writes it;
2. the ``LAKEBOX_HOME`` environment variable.

The metadata database of that workspace is ``[metadata] url`` of its ``lakebox.toml``, else
``<home>/lakebox.db``.

Example:
    >>> registry_store_uri("sqlite:////w/mlflow.db", "/w")
    'lakebox:sqlite:////w/mlflow.db?lakebox_home=%2Fw'
    >>> split_registry_uri('lakebox:sqlite:////w/mlflow.db?lakebox_home=%2Fw')
    ('sqlite:////w/mlflow.db', '/w')
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from lakebox.errors import SettingsError

__all__ = [
    "SCHEME",
    "build_registry_store",
    "outbox_for_home",
    "registry_store_uri",
    "split_registry_uri",
]

SCHEME = "lakebox"
HOME_PARAM = "lakebox_home"
_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_outboxes: dict[str, Any] = {}
_lock = threading.Lock()


def registry_store_uri(inner_uri: str, home: str | os.PathLike[str]) -> str:
    """Wrap a database registry URI so changes through it emit events to ``home``'s outbox.

    URIs that are not databases (``http://``, ``databricks``, files) and URIs already wrapped
    are returned unchanged: events of a remote registry are that server's business.
    """
    scheme = inner_uri.split(":", 1)[0].split("+")[0]
    if inner_uri.startswith(f"{SCHEME}:") or scheme not in _DB_SCHEMES:
        return inner_uri
    sep = "&" if "?" in inner_uri else "?"
    return f"{SCHEME}:{inner_uri}{sep}{HOME_PARAM}={quote(str(home), safe='')}"


def split_registry_uri(uri: str) -> tuple[str, str | None]:
    """``(database URI, workspace home or None)`` of a ``lakebox:`` registry URI."""
    if not uri.startswith(f"{SCHEME}:"):
        raise SettingsError(
            f"Registry URI {uri!r} is not a lakebox URI; expected "
            f"'{SCHEME}:<database URI>?{HOME_PARAM}=<workspace folder>'."
        )
    inner = uri[len(SCHEME) + 1 :]
    base, _, query = inner.partition("?")
    home = None
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == HOME_PARAM:
            home = value
        else:
            kept.append((key, value))
    if kept:
        base = f"{base}?{urlencode(kept)}"
    return base, home


def outbox_for_home(home: str | os.PathLike[str]) -> Any:
    """The (cached, migrated) :class:`~lakebox.events.Outbox` of a workspace folder."""
    from lakebox.events._outbox import Outbox
    from lakebox.metadata import MetadataDB
    from lakebox.settings import load_settings

    path = Path(home).expanduser().resolve()
    key = str(path)
    with _lock:
        if key not in _outboxes:
            url = load_settings(path).metadata.url or f"sqlite:///{path / 'lakebox.db'}"
            db = MetadataDB(url)
            db.migrate()
            _outboxes[key] = Outbox(db)
        return _outboxes[key]


def build_registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """Entry point of ``mlflow.model_registry_store`` for the ``lakebox`` scheme."""
    from lakebox.events._mlflow_store import EventingRegistryStore

    inner, home = split_registry_uri(store_uri)
    home = home or os.environ.get("LAKEBOX_HOME")
    if not home:
        raise SettingsError(
            f"Registry URI {store_uri!r} names no workspace: add "
            f"?{HOME_PARAM}=<folder> or set LAKEBOX_HOME."
        )
    return EventingRegistryStore(inner, outbox=outbox_for_home(home))
