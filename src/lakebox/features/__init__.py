"""The feature store: feature tables, point-in-time training sets, models that carry their
features, batch scoring and the online store.

Reached as ``ws.features`` (a :class:`FeatureEngineeringClient`, named after Databricks' client)
and ``ws.functions`` (Python UDFs). Serving computes request features with
:meth:`FeatureSpec.load` and :meth:`FeatureSpec.lookup_online`.

Example:
    >>> from lakebox.features import FeatureLookup
    >>> lookup = FeatureLookup("main.fs.customer_daily", "customer_id",
    ...                        timestamp_lookup_key="event_ts")
    >>> lookup.lookup_key
    ['customer_id']
"""

from lakebox.features._client import FeatureEngineeringClient, FeatureTable
from lakebox.features._functions import FunctionInfo, Functions
from lakebox.features._lookups import FeatureFunction, FeatureLookup
from lakebox.features._spec import FeatureSpec
from lakebox.features._training import TrainingSet

__all__ = [
    "FeatureEngineeringClient",
    "FeatureFunction",
    "FeatureLookup",
    "FeatureSpec",
    "FeatureTable",
    "FunctionInfo",
    "Functions",
    "TrainingSet",
]
