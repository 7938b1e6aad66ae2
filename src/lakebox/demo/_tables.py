"""Demo step: Delta tables, versions, merge, time travel and SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakebox.demo import _data

if TYPE_CHECKING:
    from lakebox.demo import DemoContext

TITLE = "Delta tables: write, merge, time travel, SQL"
N_CUSTOMERS = 2_000


def run(ctx: DemoContext) -> None:
    ws = ctx.ws
    for name in ("main.raw.customers", "main.raw.activity"):
        ws.tables.drop(name, missing_ok=True)
    customers = _data.customers(N_CUSTOMERS)
    ws.tables.write("main.raw.customers", customers)
    ids = customers["customer_id"].to_numpy()
    ws.tables.write("main.raw.activity", _data.activity(ids, 14), partition_by=["day"])
    ctx.say(
        f"wrote main.raw.customers ({len(customers):,} rows) and two weeks of "
        "main.raw.activity, partitioned by day"
    )
    version = ws.tables.write("main.raw.activity", _data.activity(ids, 7, first_day=14))
    ctx.say(f"appended a third week → main.raw.activity is at version {version}")
    updates = customers.sample(200, random_state=0).assign(plan="pro")
    metrics = ws.tables.merge("main.raw.customers", updates, on=["customer_id"])
    ctx.say(f"merged {metrics['num_target_rows_updated']} plan upgrades into main.raw.customers")
    ws.tables.set_comment("main.raw.activity", "Daily usage per customer")
    then = ws.tables.read("main.raw.activity", version=0, columns=["customer_id"])
    now = ws.tables.read("main.raw.activity", columns=["customer_id"])
    ctx.say(f"time travel: version 0 has {len(then):,} rows, the latest {len(now):,}")
    by_plan = ws.sql(
        "SELECT plan, count(*) AS customers FROM main.raw.customers GROUP BY plan ORDER BY plan",
        output="pandas",
    )
    ctx.say("SQL: " + ", ".join(f"{r.plan}={r.customers}" for r in by_plan.itertuples()))
    ctx.state["activity_version"] = version
