"""The ASGI server behind ``lakebox up``: REST API (Databricks-compatible paths) and the MLflow
tracking server and UI, in one app."""

from lakebox.server._app import create_app
from lakebox.server._run import check_bind, serve

__all__ = ["check_bind", "create_app", "serve"]
