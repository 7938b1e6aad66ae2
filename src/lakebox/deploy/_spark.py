"""Batch scoring on the ``spark`` engine (the ``spark`` entry of ``SCORING_BACKENDS``).

The input snapshot is read by Spark (the files delta-rs lists for its version), a model's
features are joined in Spark (the same point-in-time joins as ``score_batch``), the model
predicts in ``mapInArrow`` tasks (a :class:`~lakebox.deploy.Predictor` per task, loading the
model once per Python worker), and the executors' Parquet files are committed to the output as
one Delta transaction carrying the same commit metadata as the local path.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError

from lakebox.deploy._batch import ScoreJob, _check_schema
from lakebox.engines import TableSnapshot
from lakebox.errors import Conflict, InvalidInput

__all__ = ["score_on_spark"]


def _engine(job: ScoreJob) -> Any:
    engine = job.ws.features.engine
    if engine.name != "spark":
        raise InvalidInput(
            f"score_on_spark needs a workspace whose engine is spark, not {engine.name!r}."
        )
    return engine


def _input_rows(job: ScoreJob) -> int:
    actions = pa.table(job.input.get_add_actions(flatten=True))
    if "num_records" not in actions.column_names:
        return -1
    counts = actions.column("num_records").to_pylist()
    return -1 if any(c is None for c in counts) else int(sum(counts))


def scored_frame(job: ScoreJob) -> Any:
    """The job's predictions as a Spark DataFrame (lazy: nothing runs until it is written)."""
    engine = _engine(job)
    ws = job.ws
    snapshot = TableSnapshot(
        job.input_table, ws.tables.location(job.input_table), job.input.version()
    )
    frame = engine.read(snapshot)
    predict = job.predictor
    sample = None
    if predict.has_feature_spec:
        from lakebox.features import FeatureSpec

        spec = FeatureSpec.load(predict.model.local_path)
        joins = spec.offline_joins(
            ws, frame.columns, versions=predict.feature_versions, override=True
        )
        if joins:
            # the output schema comes from scoring a few joined rows: join a few input rows
            # rather than take a few rows of the whole join (which would run it twice)
            sample = engine.join_frame(frame.limit(64), joins)
            frame = engine.join_frame(frame, joins)
        predict = replace(predict, features_joined=True)
    return engine.score(frame, predict, sample=sample)


def score_on_spark(job: ScoreJob) -> tuple[int | None, int]:
    """Score ``job`` on the workspace's Spark engine into one Delta commit; returns the
    output version (None when the input is empty) and the rows written."""
    from pyspark.sql import functions as F

    from lakebox.engines._spark_delta import spark_schema

    engine = _engine(job)
    ws, name = job.ws, job.output_table
    total = _input_rows(job)
    if total == 0:
        return None, 0
    scored = scored_frame(job)
    if total < 0:  # a writer that kept no row counts in the log
        scored = scored.cache()
        total = scored.count()
        if total == 0:
            return None, 0
    schema = engine.schema(scored)
    exists = ws.tables.exists(name)
    if exists and job.mode == "append":
        target = pa.schema(ws.tables.delta_table(name).schema().to_arrow())
        _check_schema(name, schema, target)
        scored = scored.select(
            *[F.col(f.name).cast(f.dataType) for f in spark_schema(target).fields]
        )
    elif not exists:
        ws.tables.create(name, schema=schema, partition_by=job.partition_by)
    try:
        version = engine.write(
            scored,
            ws.tables.location(name),
            mode=job.mode,
            partition_by=job.partition_by,
            commit_properties=CommitProperties(custom_metadata=job.metadata),
        )
    except CommitFailedError as exc:
        raise Conflict(
            f"A concurrent commit to {name!r} conflicted with the scoring commit "
            f"({exc}); nothing was written. Run the scoring again."
        ) from None
    if job.progress is not None:
        job.progress(total, total)
    return version, total
