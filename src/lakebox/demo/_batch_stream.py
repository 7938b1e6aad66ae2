"""Demo step: batch-score a Delta table into a partitioned, Z-ordered predictions table, then
run a short stream that scores new activity exactly once as it lands."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Batch and streaming scoring into Delta"
LIVE = "main.raw.activity_live"
QUERY = "demo_churn_live"


def run(ctx: DemoContext) -> None:
    from lakebox import deploy, streaming

    ws = ctx.ws
    version = ctx.state.get("model_version")
    model_uri = f"models:/churn/{version}" if version else "models:/churn/latest"
    for name in ("main.preds.churn_daily", "main.preds.churn_live", LIVE):
        ws.tables.drop(name, missing_ok=True)
    shutil.rmtree(streaming.checkpoint_root(ws) / QUERY, ignore_errors=True)

    result = deploy.score_table(
        model_uri,
        "main.raw.activity",
        "main.preds.churn_daily",
        ws=ws,
        partition_by=["day"],
        zorder_by=["customer_id"],
        workers=1,
    )
    ctx.say(
        f"score_table: {result.rows:,} rows of main.raw.activity v{result.input_version} "
        f"scored by churn v{result.model_version} → main.preds.churn_daily "
        f"v{result.output_version} (partitioned by day, Z-ordered by customer_id)"
    )

    # New activity lands in small commits; a stream scores each row exactly once.
    ids = ws.tables.read("main.raw.customers", columns=["customer_id"])["customer_id"].to_numpy()
    live = _data.activity(ids, 1, first_day=21)
    half = len(live) // 2
    ws.tables.write(LIVE, live.iloc[:half])
    score = deploy.predictor(model_uri, ws=ws)
    query = (
        streaming.read_delta(ws, LIVE)
        .with_watermark("ts", "1 day")
        .drop_duplicates(["customer_id", "day"])
        .map(score, arrow=True)
        .write_delta("main.preds.churn_live", query_name=QUERY)
    )
    query.run(trigger="available_now")
    ws.tables.write(LIVE, live.iloc[half - 50 :])  # 50 rows sent twice: dropped by the stream
    status = query.run(trigger="available_now")
    rows = len(ws.tables.read("main.preds.churn_live", columns=["customer_id"]))
    ctx.say(
        f"stream {QUERY}: {status['last_batch_id'] + 1} micro-batches, {rows:,} rows "
        f"scored once each (of {len(live) + 50:,} arriving, 50 duplicates dropped); "
        f"watermark {status['watermark']}; see `lakebox streams status {QUERY}`"
    )
    ctx.state.update(predictions_table="main.preds.churn_daily", stream_query=QUERY)
