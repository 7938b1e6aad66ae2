"""The :class:`Workspace`: one folder holding tables, MLflow data and metadata."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakebox.catalog import Tables, run_sql
from lakebox.errors import SettingsError
from lakebox.metadata import MetadataDB
from lakebox.settings import SETTINGS_FILE, Settings, default_settings_text, load_settings

if TYPE_CHECKING:
    from lakebox.events import Webhooks
    from lakebox.features import FeatureEngineeringClient, Functions
    from lakebox.jobs import Jobs
    from lakebox.models import ModelRegistry
    from lakebox.monitoring import Monitors
    from lakebox.serving import Serving
    from lakebox.streaming import Streams

__all__ = ["Workspace", "resolve_home"]

HOME_ENV = "LAKEBOX_HOME"
DEFAULT_HOME = ".lakebox"
# MLflow URIs this process's lakebox has set, so that a later Workspace can tell
# our own MLFLOW_TRACKING_URI (MLflow exports it on set_tracking_uri) from the user's.
_uri_set_by_lakebox: set[str] = set()
_registry_uri_set_by_lakebox: set[str] = set()
# Read by MLflow's SQL store for the default artifact root of new experiments; the same
# variable `mlflow server --default-artifact-root` sets for its workers.
_MLFLOW_ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"


def resolve_home(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: ``path``, else ``$LAKEBOX_HOME``, else ``./.lakebox``."""
    chosen = path or os.environ.get(HOME_ENV) or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


class Workspace:
    """A lakebox workspace: the one object users start from.

    It loads the settings, opens the metadata database (applying migrations), points MLflow at
    the workspace and wires the parts together. It holds no logic of its own.

    Args:
        path: the workspace folder; defaults to ``$LAKEBOX_HOME`` or ``./.lakebox``. Created
            (with a commented ``lakebox.toml``) on first use.
        engine: override ``[engine] name`` (``"local"`` or ``"spark"``).
        spark_master: override ``[engine] spark_master``.
        settings: further overrides, ``{section: {key: value}}``.

    Example:
        >>> import lakebox
        >>> ws = lakebox.Workspace("/tmp/lakebox-doctest")                  # doctest: +SKIP
        >>> ws.tables.write("main.sales.orders", df)                        # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        engine: str | None = None,
        spark_master: str | None = None,
        settings: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.home = resolve_home(path)
        self._init_folder()
        overrides = {section: dict(values) for section, values in (settings or {}).items()}
        if engine is not None:
            overrides.setdefault("engine", {})["name"] = engine
        if spark_master is not None:
            overrides.setdefault("engine", {})["spark_master"] = spark_master
        self.settings: Settings = load_settings(self.home, overrides)
        self.metadata = MetadataDB(self.metadata_url)
        self.metadata.migrate()
        self.tables = Tables(
            root=self.storage_root, db=self.metadata, storage_options=self.settings.storage.options
        )
        self.configure_mlflow()
        if self.settings.mlflow.lineage:
            import functools

            from lakebox.tracking import log_table_read

            self.tables.read_hooks.append(
                functools.partial(
                    log_table_read, storage_options=self.settings.storage.options or None
                )
            )
        if self.settings.mlflow.autolog:
            from lakebox.tracking import autolog

            autolog()

    def _init_folder(self) -> None:
        if self.home.exists() and not self.home.is_dir():
            raise SettingsError(
                f"Workspace path {self.home} is a file; LAKEBOX_HOME must be a "
                "folder (it is created if missing)."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        settings_file = self.home / SETTINGS_FILE
        if not settings_file.exists():
            settings_file.write_text(default_settings_text())

    # ----------------------------------------------------------------- locations
    @property
    def storage_root(self) -> str:
        """Folder or URI under which Delta tables live."""
        root = self.settings.storage.root
        return root if "://" in root else str((self.home / root).resolve())

    @property
    def metadata_url(self) -> str:
        """SQLAlchemy URL of the metadata database."""
        return self.settings.metadata.url or f"sqlite:///{self.home / 'lakebox.db'}"

    @property
    def artifact_root(self) -> str:
        """Where MLflow stores artifacts of experiments created through this workspace."""
        return self.settings.mlflow.artifact_root or str(self.home / "mlartifacts")

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI this workspace uses (see :meth:`configure_mlflow`)."""
        return self._tracking_uri

    @property
    def registry_uri(self) -> str:
        """The MLflow model registry URI this workspace uses."""
        return self._registry_uri

    # ----------------------------------------------------------------- MLflow
    def configure_mlflow(self) -> None:
        """Point MLflow at this workspace.

        Precedence: ``MLFLOW_TRACKING_URI`` set by the user in the environment, then
        ``[mlflow] tracking_uri`` in ``lakebox.toml``, then ``sqlite:///<home>/mlflow.db`` with
        artifacts under ``<home>/mlartifacts``. The registry URI follows the same order with
        ``MLFLOW_REGISTRY_URI`` and ``[mlflow] registry_uri``, defaulting to the tracking URI.

        A database registry URI is wrapped as ``lakebox:<database URI>?lakebox_home=<home>``
        (see :mod:`lakebox.events._plugin`): MLflow then loads lakebox's registry store, so
        every registry change, from any client or from the MLflow UI, emits webhook events.
        """
        import mlflow

        env_uri = os.environ.get("MLFLOW_TRACKING_URI")
        user_env = env_uri if env_uri and env_uri not in _uri_set_by_lakebox else None
        self._tracking_uri = (
            user_env or self.settings.mlflow.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"
        )
        env_registry = os.environ.get("MLFLOW_REGISTRY_URI")
        user_registry = env_registry if env_registry not in _registry_uri_set_by_lakebox else None
        from lakebox.events import registry_store_uri

        self._registry_uri = registry_store_uri(
            user_registry or self.settings.mlflow.registry_uri or self._tracking_uri, self.home
        )
        if self._tracking_uri.startswith(("sqlite", "postgresql", "mysql", "mssql")):
            os.environ[_MLFLOW_ARTIFACT_ROOT_ENV] = self.artifact_root
            if "://" not in self.artifact_root:
                Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self._tracking_uri)
        mlflow.set_registry_uri(self._registry_uri)
        _uri_set_by_lakebox.add(self._tracking_uri)
        _registry_uri_set_by_lakebox.add(self._registry_uri)

    # ----------------------------------------------------------------- registry
    @functools.cached_property
    def models(self) -> ModelRegistry:
        """The model registry lifecycle: stages, aliases, transition requests, comments."""
        from lakebox.models import ModelRegistry

        return ModelRegistry(self)

    @functools.cached_property
    def webhooks(self) -> Webhooks:
        """Registry webhooks (HTTP and job triggers) and their delivery log."""
        from lakebox.models import workspace_webhooks

        return workspace_webhooks(self)

    # ----------------------------------------------------------------- feature store
    @functools.cached_property
    def features(self) -> FeatureEngineeringClient:
        """The feature store: feature tables, training sets, score_batch, online store."""
        from lakebox.features import FeatureEngineeringClient

        return FeatureEngineeringClient(self)

    @functools.cached_property
    def functions(self) -> Functions:
        """Python UDFs registered in the catalog (used by FeatureFunction)."""
        from lakebox.features import Functions

        return Functions(self.metadata)

    # ----------------------------------------------------------------- jobs
    @functools.cached_property
    def jobs(self) -> Jobs:
        """Jobs: multi-task workflows, clusters, schedules, triggers, runs and repair."""
        from lakebox.jobs import Jobs

        return Jobs(self)

    # ----------------------------------------------------------------- streaming
    @functools.cached_property
    def streams(self) -> Streams:
        """Streaming queries: start them, see their status, stop or reset them."""
        from lakebox.streaming import Streams

        return Streams(self)

    # ----------------------------------------------------------------- serving
    @functools.cached_property
    def serving(self) -> Serving:
        """Model serving endpoints: served models, traffic split, hot swap, inference tables."""
        from lakebox.serving import Serving

        return Serving(self)

    # ----------------------------------------------------------------- monitoring
    @functools.cached_property
    def monitors(self) -> Monitors:
        """Monitors: profile and drift metric tables, alerts, reports."""
        from lakebox.monitoring import Monitors

        return Monitors(self)

    # ----------------------------------------------------------------- SQL
    def sql(self, query: str, *, output: str = "arrow") -> Any:
        """Run SQL over the catalog's tables with DuckDB.

        Three-level names resolve to Delta tables; ``name VERSION AS OF n`` and
        ``name TIMESTAMP AS OF '...'`` read older versions.

        Args:
            query: the SQL query.
            output: ``"arrow"`` (a pyarrow Table, default) or ``"pandas"``.

        Example:
            >>> ws.sql("SELECT day, count(*) FROM main.raw.activity GROUP BY day")  # doctest: +SKIP
        """
        return run_sql(self.tables, query, output=output, threads=self.settings.engine.threads)

    def close(self) -> None:
        """Release database connections."""
        if "jobs" in self.__dict__:
            self.jobs.close()
        if "features" in self.__dict__:
            self.features.close()
        if "serving" in self.__dict__:
            self.serving.close()
        self.metadata.dispose()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r})"
