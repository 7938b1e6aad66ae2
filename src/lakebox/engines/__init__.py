"""Engines: the data-heavy operations (point-in-time joins, latest rows per key), written once
against :class:`Engine` and run by ``local`` (DuckDB/Arrow, in the process) or ``spark``.

Example:
    >>> from lakebox.engines import get_engine
    >>> engine = get_engine("local")
    >>> engine.name
    'local'
"""

from lakebox.engines._base import Engine, FeatureJoin, TableSnapshot, get_engine

__all__ = ["Engine", "FeatureJoin", "TableSnapshot", "get_engine"]
