"""Streaming: micro-batch streams over Delta tables and landing folders, with event-time
watermarks, windowed aggregation, de-duplication, checkpoints and exactly-once Delta sinks.

Example:
    >>> from lakebox import streaming
    >>> query = (streaming.read_delta(ws, "main.raw.events")               # doctest: +SKIP
    ...          .with_watermark("ts", "10 minutes")
    ...          .drop_duplicates("event_id")
    ...          .map(lakebox.deploy.predictor("models:/churn/1", ws=ws))
    ...          .write_delta("main.preds.events", query_name="score_events"))
    >>> query.run(trigger="available_now")                                 # doctest: +SKIP
    >>> ws.streams.status("score_events")["last_batch_id"]                 # doctest: +SKIP

Queries keep their checkpoint in ``<home>/checkpoints/<query_name>``; running a query again
resumes where it stopped. ``lakebox streams list|status|stop|reset`` manage them.
"""

from lakebox.streaming._checkpoint import Checkpoint
from lakebox.streaming._ops import parse_duration
from lakebox.streaming._query import Stream, StreamingQuery, checkpoint_root, run_pipeline
from lakebox.streaming._sinks import DeltaSink, ForeachBatchSink, Sink
from lakebox.streaming._sources import DeltaSource, FileSource, Plan, Source
from lakebox.streaming._streams import Streams, read_delta, read_files

__all__ = [
    "Checkpoint",
    "DeltaSink",
    "DeltaSource",
    "FileSource",
    "ForeachBatchSink",
    "Plan",
    "Sink",
    "Source",
    "Stream",
    "StreamingQuery",
    "Streams",
    "checkpoint_root",
    "parse_duration",
    "read_delta",
    "read_files",
    "run_pipeline",
]
