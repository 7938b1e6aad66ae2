"""Real-time model serving: endpoints with several served models, traffic split, hot swap,
just-in-time features, inference tables and Prometheus metrics.

Reached as ``ws.serving`` (a :class:`Serving`); served over HTTP by ``lakebox up`` at
``/serving-endpoints/{name}/invocations`` and managed at ``/api/2.0/serving-endpoints``.

Example:
    >>> from lakebox.serving import EndpointConfig
    >>> cfg = EndpointConfig.from_json({"served_entities": [
    ...     {"entity_name": "churn", "alias": "champion"}]})
    >>> cfg.routes
    {'churn-champion': 100}
"""

from lakebox.serving._config import EndpointConfig, ServedEntity
from lakebox.serving._endpoints import Serving, endpoint_json
from lakebox.serving._inputs import ColumnSchema, ParsedInput, parse_request
from lakebox.serving._metrics import Metrics
from lakebox.serving._model import LoadedModel, LoadError
from lakebox.serving._runtime import Deployment, PayloadTooLarge, Response, Runtime
from lakebox.serving._store import EndpointRecord

__all__ = [
    "ColumnSchema",
    "Deployment",
    "EndpointConfig",
    "EndpointRecord",
    "LoadError",
    "LoadedModel",
    "Metrics",
    "ParsedInput",
    "PayloadTooLarge",
    "Response",
    "Runtime",
    "ServedEntity",
    "Serving",
    "endpoint_json",
    "parse_request",
]
