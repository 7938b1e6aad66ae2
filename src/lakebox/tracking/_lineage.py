"""Data lineage: table reads inside an MLflow run become dataset inputs of the run."""

from __future__ import annotations

import hashlib
from typing import Any

from mlflow.data.dataset_source import DatasetSource

from lakebox.catalog import TableName
from lakebox.errors import InvalidInput, NotFound

__all__ = ["LakeboxTableSource", "log_table_read", "training_data"]

SOURCE_TYPE = "lakebox_delta"


class LakeboxTableSource(DatasetSource):
    """An MLflow dataset source naming a lakebox Delta table at one version.

    MLflow rebuilds it from a run's inputs (``mlflow.data.get_source(dataset_input)``, through
    the ``mlflow.dataset_source`` entry point) and :meth:`load` reads exactly that version.
    """

    def __init__(self, table: str, version: int, location: str) -> None:
        self.table = table
        self.version = int(version)
        self.location = location

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self, **_: Any) -> Any:
        """The table's rows at the recorded version, as a pandas DataFrame."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            dt = DeltaTable(self.location, version=self.version)
        except TableNotFoundError:
            raise NotFound(f"Table {self.table!r} (read at version {self.version}) no longer "
                           f"exists at {self.location}: it was dropped, so the training data "
                           "cannot be reloaded.") from None
        except DeltaError as exc:
            raise NotFound(f"Version {self.version} of table {self.table!r} cannot be read "
                           f"any more ({exc}); it was probably vacuumed.") from None
        return dt.to_pandas()

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> LakeboxTableSource:
        raise NotImplementedError("lakebox table sources are built from tables, not strings")

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "version": self.version, "location": self.location}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> LakeboxTableSource:
        return cls(source_dict["table"], source_dict["version"], source_dict["location"])


def log_table_read(table: TableName, version: int, location: str) -> None:
    """Record a table read as a dataset input of the active MLflow run (if any)."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset

    run = mlflow.active_run()
    if run is None:
        return
    digest = hashlib.sha256(f"{location}@{version}".encode()).hexdigest()[:8]
    source = LakeboxTableSource(table.full_name, version, location)
    name = f"{table.full_name}@v{version}"
    dataset = MetaDataset(source=source, name=name, digest=digest)  # type: ignore[abstract]
    mlflow.log_input(dataset, context="training")


def training_data(run_id: str, table: str | None = None) -> Any:
    """Reload the exact table version a run read, as a pandas DataFrame.

    Args:
        run_id: the MLflow run.
        table: which table, when the run read several (full or short name).
    """
    import mlflow

    sources = []
    inputs = mlflow.get_run(run_id).inputs
    for dataset_input in inputs.dataset_inputs if inputs else []:
        if dataset_input.dataset.source_type == SOURCE_TYPE:
            import json

            sources.append(LakeboxTableSource.from_dict(json.loads(dataset_input.dataset.source)))
    if table is not None:
        wanted = TableName.parse(table).full_name
        sources = [s for s in sources if s.table == wanted]
    if not sources:
        raise NotFound(f"Run {run_id} recorded no read of "
                       f"{'table ' + repr(table) if table else 'any lakebox table'}.")
    if len({(s.table, s.version) for s in sources}) > 1:
        names = sorted({f"{s.table}@v{s.version}" for s in sources})
        raise InvalidInput(f"Run {run_id} read several tables {names}; pass table= to choose.")
    return sources[0].load()
