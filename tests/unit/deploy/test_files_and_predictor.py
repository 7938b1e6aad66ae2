"""Worker-side Parquet files with Delta stats, and the picklable Predictor."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.transaction import AddAction
from sklearn.linear_model import LinearRegression

import lakebox.deploy
import lakebox.streaming
from lakebox.deploy import Predictor, resolve_model
from lakebox.deploy._files import FileWriter, local_path
from lakebox.errors import InvalidInput


def test_public_api_is_sorted() -> None:
    assert lakebox.deploy.__all__ == sorted(lakebox.deploy.__all__)
    assert lakebox.streaming.__all__ == sorted(lakebox.streaming.__all__)


def test_file_writer_partitions_and_stats_commit_as_delta(tmp_path: Path) -> None:
    root = tmp_path / "t"
    writer = FileWriter(root, ["day"], None)
    writer.write(pa.table({"id": [1, 2, 3], "day": ["a b", "c", "a b"], "v": [0.5, None, 2.0]}))
    writer.write(pa.table({"id": [9], "day": [None], "v": [1.0]}))
    actions = writer.close()
    assert sorted(a["rows"] for a in actions) == [1, 1, 2]
    first = next(a for a in actions if a["partition_values"] == {"day": "a b"})
    assert first["path"].startswith("day=a%20b/")
    stats = json.loads(first["stats"])
    assert stats == {
        "numRecords": 2,
        "minValues": {"id": 1, "v": 0.5},
        "maxValues": {"id": 3, "v": 2.0},
        "nullCount": {"id": 0, "v": 0},
    }
    schema = pa.schema([("id", pa.int64()), ("day", pa.string()), ("v", pa.float64())])
    write_deltalake(str(root), schema.empty_table(), partition_by=["day"])
    DeltaTable(str(root)).create_write_transaction(
        [
            AddAction(
                a["path"],
                a["size"],
                a["partition_values"],
                a["modification_time"],
                True,
                a["stats"],
            )
            for a in actions
        ],
        mode="append",
        schema=schema,
        partition_by=["day"],
    )
    table = DeltaTable(str(root)).to_pyarrow_table().sort_by("id")
    assert table.column("day").to_pylist() == ["a b", "c", "a b", None]
    assert DeltaTable(str(root)).to_pyarrow_table(filters=[("id", ">", 2)]).num_rows == 2


def test_local_path() -> None:
    assert local_path("/x/y") == Path("/x/y")
    assert local_path("file:///x/y") == Path("/x/y")
    assert local_path("s3://bucket/t") is None


def test_predictor_is_picklable_and_widens_ints(ws, tmp_path: Path) -> None:
    x = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0]})
    model = LinearRegression().fit(x, [1.0, 2.0, 3.0])
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        input_example=x.head(1),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )
    ref = resolve_model(str(path))
    assert (ref.name, ref.version) == (None, None)
    score = pickle.loads(pickle.dumps(Predictor(ref, keep_columns=["id"])))
    out = score(pd.DataFrame({"id": [7, 8], "a": [1, 2], "b": [0, 1], "junk": ["x", "y"]}))
    assert list(out.columns) == ["id", "prediction", "model_name", "model_version", "scored_at"]
    np.testing.assert_allclose(
        out["prediction"], model.predict(pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 1.0]}))
    )
    with pytest.raises(InvalidInput, match="needs column"):
        score(pd.DataFrame({"a": [1.0]}))
