"""Delta tables in the lakebox catalog: a runnable tour.

Run it with ``python docs/tables.py`` (uses ``$LAKEBOX_HOME`` or ``./.lakebox``).
"""

import pandas as pd

import lakebox
from lakebox.errors import SchemaMismatch

ws = lakebox.Workspace()
ws.tables.drop("main.docs.orders", missing_ok=True)

# Create a partitioned table by writing to it, then append a second version.
orders = pd.DataFrame(
    {
        "order_id": [1, 2, 3],
        "day": ["2026-01-01", "2026-01-01", "2026-01-02"],
        "amount": [9.5, 20.0, 5.25],
    }
)
ws.tables.write("main.docs.orders", orders, partition_by=["day"])
ws.tables.write(
    "main.docs.orders", pd.DataFrame({"order_id": [4], "day": ["2026-01-02"], "amount": [7.0]})
)

# Upsert: order 2 changes, order 5 is new.
ws.tables.merge(
    "main.docs.orders",
    pd.DataFrame({"order_id": [2, 5], "day": ["2026-01-01", "2026-01-03"], "amount": [21.0, 3.0]}),
    on=["order_id"],
)

# Time travel and filtered reads.
assert len(ws.tables.read("main.docs.orders", version=0)) == 3
assert len(ws.tables.read("main.docs.orders")) == 5
big = ws.tables.read("main.docs.orders", filter="amount > 8", columns=["order_id"])
assert sorted(big["order_id"]) == [1, 2]

# SQL over the catalog, including an older version.
per_day = ws.sql("SELECT day, sum(amount) AS total FROM main.docs.orders GROUP BY day ORDER BY day")
print(per_day.to_pandas())
print(ws.sql("SELECT count(*) AS n FROM main.docs.orders VERSION AS OF 0").to_pylist())

# Data that does not fit the schema is refused and nothing is written.
try:
    ws.tables.write("main.docs.orders", pd.DataFrame({"order_id": ["x"], "amount": [1]}))
except SchemaMismatch as err:
    print("refused:", err)
assert ws.tables.get("main.docs.orders").version == 2

# Comments, tags, history and maintenance.
ws.tables.set_comment("main.docs.orders", "Orders, one row per order")
ws.tables.set_tags("main.docs.orders", {"owner": "docs"})
for commit in ws.tables.history("main.docs.orders"):
    print(commit["version"], commit["operation"])
ws.tables.optimize("main.docs.orders", zorder_by=["order_id"])
ws.tables.restore("main.docs.orders", 0)
assert len(ws.tables.read("main.docs.orders")) == 3
