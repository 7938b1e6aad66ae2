"""lakebox: the Databricks ML lifecycle on open parts.

Start from a :class:`Workspace`::

    import lakebox
    ws = lakebox.Workspace()            # ./.lakebox, or $LAKEBOX_HOME
    ws.tables.write("main.raw.events", df)
"""

from lakebox import deploy, errors, monitoring, streaming, tuning
from lakebox._version import __version__
from lakebox.catalog import TableInfo, TableName
from lakebox.features import FeatureFunction, FeatureLookup
from lakebox.workspace import Workspace

__all__ = [
    "FeatureFunction",
    "FeatureLookup",
    "TableInfo",
    "TableName",
    "Workspace",
    "__version__",
    "deploy",
    "errors",
    "monitoring",
    "streaming",
    "tuning",
]
