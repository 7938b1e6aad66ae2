"""Data lineage: table reads inside an MLflow run become dataset inputs of the run.

The Workspace registers :func:`log_table_read` as a read hook of ``ws.tables`` when
``[mlflow] lineage = true`` (the default). Each read inside an active run logs one
``mlflow.log_input`` naming the table, its Delta version, its location and the table's Delta id;
MLflow rebuilds the :class:`LakeboxTableSource` from the run (entry point
``mlflow.dataset_source``) and :func:`training_data` reloads exactly that version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource

from lakebox.catalog import TableName
from lakebox.errors import InvalidInput, NotFound

__all__ = [
    "LakeboxTableDataset",
    "LakeboxTableSource",
    "log_table_read",
    "table_reads",
    "training_data",
]

log = logging.getLogger(__name__)

SOURCE_TYPE = "lakebox_delta"
CONTEXT = "training"


class LakeboxTableSource(DatasetSource):
    """An MLflow dataset source naming a lakebox Delta table at one version.

    MLflow rebuilds it from a run's inputs (``mlflow.data.get_source(dataset_input)``, through
    the ``mlflow.dataset_source`` entry point) and :meth:`load` reads exactly that version.

    Args:
        table: the table's full name, ``catalog.schema.table``.
        version: the Delta version that was read.
        location: where the table's files live (path or URI).
        table_id: the Delta table id (``metaData.id``); tells a re-created table from the
            original one at the same location.

    Example:
        >>> source = mlflow.data.get_source(run.inputs.dataset_inputs[0])   # doctest: +SKIP
        >>> source.load()                                                    # doctest: +SKIP
    """

    def __init__(
        self, table: str, version: int, location: str, table_id: str | None = None
    ) -> None:
        self.table = table
        self.version = int(version)
        self.location = location
        self.table_id = table_id

    @staticmethod
    def _get_source_type() -> str:
        return SOURCE_TYPE

    def load(self, *, storage_options: Mapping[str, str] | None = None, **_: Any) -> Any:
        """The table's rows at the recorded version, as a pandas DataFrame.

        Raises:
            NotFound: the table was dropped (or dropped and re-created), or that version's
                files were vacuumed.
        """
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        what = f"Table {self.table!r} at version {self.version}"
        try:
            dt = DeltaTable(self.location, storage_options=dict(storage_options or {}) or None)
        except TableNotFoundError:
            raise NotFound(
                f"{what} cannot be reloaded: the table no longer exists at "
                f"{self.location} (it was dropped). Lineage records which data was "
                "read; it does not keep a copy."
            ) from None
        if self.table_id is not None and dt.metadata().id != self.table_id:
            raise NotFound(
                f"{what} cannot be reloaded: the table was dropped and re-created "
                f"since the run read it (Delta id {self.table_id} is now "
                f"{dt.metadata().id})."
            )
        if self.version > dt.version():
            raise NotFound(
                f"{what} cannot be reloaded: the table at {self.location} only has "
                f"versions up to {dt.version()} (it was re-created)."
            )
        try:
            dt.load_as_version(self.version)
            return dt.to_pandas()
        except (DeltaError, OSError) as exc:
            raise NotFound(
                f"{what} cannot be reloaded any more ({' '.join(str(exc).split())}"
                "); its files were probably removed by vacuum."
            ) from None

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> LakeboxTableSource:
        raise NotImplementedError("lakebox table sources are built from tables, not strings")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "table": self.table,
            "version": self.version,
            "location": self.location,
        }
        if self.table_id is not None:
            data["table_id"] = self.table_id
        return data

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> LakeboxTableSource:
        return cls(
            source_dict["table"],
            source_dict["version"],
            source_dict["location"],
            source_dict.get("table_id"),
        )

    def __repr__(self) -> str:
        return f"LakeboxTableSource({self.table!r}, version={self.version})"


class LakeboxTableDataset(Dataset):
    """One version of a lakebox table as an MLflow dataset: source, schema and profile
    (rows, files, bytes) taken from the Delta log without reading data."""

    def __init__(
        self,
        source: LakeboxTableSource,
        *,
        schema: Any = None,
        profile: dict[str, Any] | None = None,
    ) -> None:
        self._schema = schema
        self._profile = profile
        super().__init__(source=source, name=f"{source.table}@v{source.version}")

    def _compute_digest(self) -> str:
        src: LakeboxTableSource = self.source  # type: ignore[assignment]
        key = f"{src.table_id or src.location}@{src.version}"
        return hashlib.sha256(key.encode()).hexdigest()[:8]

    @property
    def profile(self) -> dict[str, Any] | None:
        return self._profile

    @property
    def schema(self) -> Any:
        return self._schema

    def to_dict(self) -> dict[str, str]:
        data = super().to_dict()
        if self._schema is not None:
            data["schema"] = json.dumps({"mlflow_colspec": self._schema.to_dict()})
        if self._profile is not None:
            data["profile"] = json.dumps(self._profile)
        return data


_ARROW_TO_MLFLOW = {
    "bool": "boolean",
    "int8": "integer",
    "int16": "integer",
    "int32": "integer",
    "int64": "long",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "float": "float",
    "halffloat": "float",
    "double": "double",
    "string": "string",
    "large_string": "string",
    "string_view": "string",
    "binary": "binary",
    "large_binary": "binary",
    "date32[day]": "datetime",
}


def _mlflow_schema(arrow_schema: Any) -> Any:
    from mlflow.types import ColSpec, Schema

    specs: list[Any] = []
    for field in arrow_schema:
        kind = str(field.type)
        mapped = "datetime" if kind.startswith("timestamp") else _ARROW_TO_MLFLOW.get(kind)
        if mapped is None:
            return None  # nested or decimal columns: leave the schema out rather than lie
        specs.append(ColSpec(mapped, field.name, required=not field.nullable))
    return Schema(specs) if specs else None


def _describe(
    location: str, version: int, storage_options: Mapping[str, str] | None
) -> tuple[str | None, Any, Any]:
    """Table id, MLflow schema and profile of one version, from the Delta log only."""
    import pyarrow as pa
    from deltalake import DeltaTable

    dt = DeltaTable(location, version=version, storage_options=dict(storage_options or {}) or None)
    actions = pa.table(dt.get_add_actions(flatten=True))
    profile = {"num_files": actions.num_rows}
    if actions.num_rows and "num_records" in actions.column_names:
        rows = actions.column("num_records").to_pylist()
        if None not in rows:
            profile["num_rows"] = int(sum(rows))
    if "size_bytes" in actions.column_names:
        profile["size_bytes"] = int(sum(actions.column("size_bytes").to_pylist()))
    schema = _mlflow_schema(pa.schema(dt.schema().to_arrow()))
    return str(dt.metadata().id), schema, profile


def log_table_read(
    table: TableName,
    version: int,
    location: str,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> None:
    """Record a table read as a dataset input of the active MLflow run (no-op outside a run).

    A read hook of ``ws.tables`` (the Workspace registers it when ``[mlflow] lineage`` is
    on); also what other parts call when they read a table on a user's behalf. Reading the
    same version twice in one run logs it once. A failure to log is reported as a warning and
    never fails the read.
    """
    import mlflow

    if mlflow.active_run() is None:
        return
    try:
        table_id, schema, profile = _describe(location, version, storage_options)
    except Exception as exc:  # lineage must never break a read
        log.warning("lineage: could not describe %s@v%s: %s", table.full_name, version, exc)
        table_id, schema, profile = None, None, None
    source = LakeboxTableSource(table.full_name, version, location, table_id)
    try:
        mlflow.log_input(
            LakeboxTableDataset(source, schema=schema, profile=profile), context=CONTEXT
        )
    except Exception as exc:
        active = mlflow.active_run()
        log.warning(
            "lineage: could not log the read of %s@v%s on run %s: %s",
            table.full_name,
            version,
            active.info.run_id if active else "?",
            exc,
        )


def table_reads(run_id: str) -> list[LakeboxTableSource]:
    """Every lakebox table version the run read, in the order MLflow lists them."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        raise NotFound(
            f"There is no MLflow run {run_id!r} in {mlflow.get_tracking_uri()}."
        ) from None
    return [
        LakeboxTableSource.from_dict(json.loads(d.dataset.source))
        for d in (run.inputs.dataset_inputs if run.inputs else [])
        if d.dataset.source_type == SOURCE_TYPE
    ]


def training_data(
    run_id: str,
    table: str | None = None,
    *,
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> Any:
    """Reload the exact table version a run read, as a pandas DataFrame.

    Args:
        run_id: the MLflow run.
        table: which table, when the run read several (full or short name).
        version: which version, when the run read several versions of the table.
        storage_options: delta-rs storage options for tables on object storage.

    Raises:
        NotFound: the run read no such table, or the table was dropped or vacuumed since.
        InvalidInput: the run read several tables or versions and none was chosen.

    Example:
        >>> with mlflow.start_run() as run:                                  # doctest: +SKIP
        ...     df = ws.tables.read("main.raw.activity")
        >>> lakebox.tracking.training_data(run.info.run_id)                  # doctest: +SKIP
    """
    sources = table_reads(run_id)
    if table is not None:
        wanted = TableName.parse(table).full_name
        sources = [s for s in sources if s.table == wanted]
    if version is not None:
        sources = [s for s in sources if s.version == version]
    if not sources:
        what = repr(table) if table else "any lakebox table"
        at = f" at version {version}" if version is not None else ""
        raise NotFound(
            f"Run {run_id} recorded no read of {what}{at}. Reads are recorded "
            "inside an active MLflow run when [mlflow] lineage is on."
        )
    distinct = sorted({(s.table, s.version) for s in sources})
    if len(distinct) > 1:
        names = [f"{t}@v{v}" for t, v in distinct]
        raise InvalidInput(f"Run {run_id} read {names}; pass table= and/or version= to choose.")
    return sources[0].load(storage_options=storage_options)
