"""Catalog explorer and feature table pages: fast tests on a fresh workspace, and a browser
test on the demo server (catalog → schema → table → time travel; feature table → model)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import mlflow
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression

import lakebox
from lakebox.features import FeatureLookup
from lakebox.monitoring import Snapshot
from lakebox.server import create_app
from lakebox.ui import _catalog_pages
from lakebox.ui._feature_pages import _shown_uri


def _client(ws: Any) -> TestClient:
    return TestClient(create_app(ws, token="", mount_mlflow=False))


def _text(html: str) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def tables_ws(ws):  # type: ignore[no-untyped-def]
    """Two catalogs; main.sales.orders has three versions, the last adding a column."""
    ws.tables.create(
        "main.sales.orders",
        pd.DataFrame({"order_id": [1, 2], "region": ["eu", "us"], "amount": [10.5, 20.0]}),
        partition_by=["region"],
        comment="Orders as placed",
        tags={"owner": "sales-eng"},
    )
    ws.tables.write(
        "main.sales.orders", pd.DataFrame({"order_id": [3], "region": ["eu"], "amount": [7.25]})
    )
    ws.tables.write(
        "main.sales.orders",
        pd.DataFrame({"order_id": [4], "region": ["us"], "amount": [1.0], "coupon": ["XMAS"]}),
        merge_schema=True,
    )
    ws.tables.set_comment("main.sales.orders", "Order amount in EUR", column="amount")
    ws.tables.delta_table("main.sales.orders").alter.set_table_properties(
        {"delta.appendOnly": "false"}
    )
    ws.tables.create("main.sales.refunds", pd.DataFrame({"order_id": [2]}))
    ws.tables.create("dev.scratch.t", pd.DataFrame({"x": [1]}))
    return ws


def test_catalogs_schemas_and_tables_are_listed(tables_ws):
    client = _client(tables_ws)
    top = client.get("/ui/catalog")
    assert top.status_code == 200
    assert 'href="/ui/catalog/dev"' in top.text and 'href="/ui/catalog/main/sales"' in top.text
    assert 'href="/ui/catalog/main/sales/orders"' in top.text  # the whole tree, one page
    assert 'href="/ui/catalog/dev/scratch/t"' in top.text
    main = client.get("/ui/catalog/main")
    assert 'data-testid="schema-sales"' in main.text
    assert "<td>2</td>" in main.text  # two tables in main.sales
    sales = client.get("/ui/catalog/main/sales")
    assert 'href="/ui/catalog/main/sales/orders"' in sales.text
    assert 'href="/ui/catalog/main/sales/refunds"' in sales.text
    assert "Orders as placed" in sales.text
    assert "scratch" not in sales.text


def test_table_page_shows_schema_metadata_history_and_sample(tables_ws):
    page = _client(tables_ws).get("/ui/catalog/main/sales/orders")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Orders as placed" in text
    assert "owner sales-eng" in text  # tag
    assert "delta.appendOnly false" in text  # Delta property
    assert re.search(r'data-testid="partition-columns"><code>region</code>', page.text)
    schema = page.text.split('data-testid="schema"')[1].split("</table>")[0]
    assert "coupon" in schema and "Order amount in EUR" in _text(schema)
    assert "<code>double</code>" in schema
    # History: every version, with its operation and metrics.
    history = page.text.split('data-testid="history"')[1].split("</table>")[0]
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', history)] == [3, 2, 1, 0]
    assert "SET TBLPROPERTIES" in history and "WRITE" in history
    assert "num_added_rows=1" in history
    # The sample holds every row (there are four) and the latest schema.
    sample = page.text.split('data-testid="sample"')[1].split("</table>")[0]
    assert sample.count("<tr>") == 1 + 4
    assert "XMAS" in sample
    assert '<span data-testid="num-rows">4</span>' in page.text


def test_time_travel_shows_the_schema_and_rows_of_an_older_version(tables_ws):
    client = _client(tables_ws)
    old = client.get("/ui/catalog/main/sales/orders?version=0")
    assert old.status_code == 200
    snapshot = old.text.split('<div id="snapshot"')[1]
    schema = snapshot.split('data-testid="schema"')[1].split("</table>")[0]
    assert 'data-column="coupon"' not in schema and 'data-column="amount"' in schema
    assert '<span data-testid="num-rows">2</span>' in snapshot
    assert "XMAS" not in snapshot and "10.5" in snapshot
    assert "Columns added since: <code>coupon</code>" in snapshot
    assert re.search(r'<option value="0"\s+selected', old.text)
    # The selector's htmx request gets only the fragment, and the address bar follows it.
    fragment = client.get(
        "/ui/catalog/main/sales/orders/snapshot",
        params={"version": 1},
        headers={"HX-Request": "true"},
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="snapshot"')
    assert fragment.headers["HX-Push-Url"] == "/ui/catalog/main/sales/orders?version=1"
    assert '<span data-testid="num-rows">3</span>' in fragment.text
    assert "<html" not in fragment.text
    latest = client.get("/ui/catalog/main/sales/orders/snapshot", params={"version": ""})
    assert 'data-version="3"' in latest.text


def test_versions_older_than_the_history_shown_can_still_be_viewed(tables_ws, monkeypatch):
    monkeypatch.setattr(_catalog_pages, "HISTORY_LIMIT", 2)
    page = _client(tables_ws).get("/ui/catalog/main/sales/orders?version=0").text
    history = page.split('data-testid="history"')[1].split("</table>")[0]
    assert [int(v) for v in re.findall(r'data-version="(\d+)"', history)] == [3, 2]
    assert "The 2 newest versions are shown" in page
    assert re.search(r'<option value="0" selected>0</option>', page)
    assert '<span data-testid="num-rows">2</span>' in page


def test_unknown_tables_versions_and_names_give_error_pages(tables_ws):
    client = _client(tables_ws)
    missing = client.get("/ui/catalog/main/sales/ordres")
    assert missing.status_code == 404
    assert "main.sales.ordres" in missing.text and "main.sales.orders" in missing.text
    assert "<h1>Something is not right</h1>" in missing.text
    for url, name in (("/ui/catalog/nope", "nope"), ("/ui/catalog/main/nope", "main.nope")):
        answer = client.get(url)
        assert answer.status_code == 404 and name in answer.text
    future = client.get("/ui/catalog/main/sales/orders?version=99")
    assert future.status_code == 404 and "no version 99" in future.text
    bad = client.get("/ui/catalog/main/sales/orders?version=abc")
    assert bad.status_code == 400 and "version must be a non-negative integer" in bad.text
    fragment = client.get(
        "/ui/catalog/main/sales/orders/snapshot?version=99", headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 404 and "<html" not in fragment.text
    bad_name = client.get("/ui/catalog/main/sales/bad-name")
    assert bad_name.status_code == 400 and "bad-name" in bad_name.text


def test_an_empty_table_and_odd_values_render(ws):
    ws.tables.create("main.s.empty", schema="id BIGINT, name STRING")
    client = _client(ws)
    empty = client.get("/ui/catalog/main/s/empty")
    assert empty.status_code == 200
    assert '<span data-testid="num-rows">0</span>' in empty.text
    assert "holds no rows at version 0" in empty.text
    ws.tables.create(
        "main.s.odd",
        pa.table({"x": [None, float("nan")], "blob": [b"\x00\x01", None], "t": ["<b>" * 60, ""]}),
    )
    sample = client.get("/ui/catalog/main/s/odd").text.split('data-testid="sample"')[1]
    assert '<td class="null">null</td>' in sample and "0001" in sample and "nan" in sample
    assert "<b>" not in sample and "&lt;b&gt;" in sample  # escaped
    assert "…" in sample  # long text cut


def test_feature_and_monitored_tables_link_to_their_pages(ws):
    ws.features.create_table(
        name="main.fs.users",
        primary_keys=["user_id"],
        df=pd.DataFrame({"user_id": [1, 2], "score": [0.5, 0.7]}),
    )
    ws.tables.create("main.fs.watched", pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    ws.monitors.create("main.fs.watched", Snapshot())
    client = _client(ws)
    listing = client.get("/ui/catalog/main/fs").text
    assert 'href="/ui/features/main.fs.users"' in listing
    assert 'href="/ui/monitors/main.fs.watched"' in listing
    page = client.get("/ui/catalog/main/fs/users").text
    assert 'data-testid="feature-link"' in page and "/ui/features/main.fs.users" in page
    assert 'href="/ui/monitors/main.fs.watched"' in client.get("/ui/catalog/main/fs/watched").text


# ------------------------------------------------------------------ feature tables
@contextlib.contextmanager
def _redis_server() -> Iterator[str]:
    """A redis-server of our own on a free loopback port, stopped on exit."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: apt-get install -y redis-server"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no redis-server"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def features_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A feature table used by two models: one registered by log_model, one logged
    unregistered and registered later (found only through its feature spec), plus a model
    without features; the table is published to the SQLite online store, then written to."""
    ws = lakebox.Workspace(tmp_path_factory.mktemp("ui-features") / "ws")
    daily = pd.DataFrame(
        {
            "customer_id": [1, 2, 1, 2],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-03", "2024-01-03"]),
            "spend_7d": [1.0, 2.0, 3.0, 4.0],
        }
    )
    ws.features.create_table(
        name="main.fs.daily",
        primary_keys=["customer_id", "ts"],
        timeseries_columns="ts",
        df=daily,
        description="Spend per customer",
    )
    ws.tables.set_comment("main.fs.daily", "Spend over 7 days", column="spend_7d")
    labels = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "event_ts": pd.to_datetime(["2024-01-02", "2024-01-04"]),
            "y": [0.0, 1.0],
        }
    )
    training = ws.features.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup("main.fs.daily", "customer_id", timestamp_lookup_key="event_ts")
        ],
        label="y",
        exclude_columns=["customer_id", "event_ts"],
    )
    train = training.load_df()
    model = LinearRegression().fit(train[["spend_7d"]], train["y"])
    with mlflow.start_run():
        ws.features.log_model(
            model,
            "model",
            flavor=mlflow.sklearn,
            training_set=training,
            registered_model_name="spend_model",
        )
    with mlflow.start_run():
        later = ws.features.log_model(model, "model", flavor=mlflow.sklearn, training_set=training)
    ws.models.register(later.model_uri, "spend_later")
    ws.models.set_alias("spend_later", "champion", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ws.models.transition_stage("spend_model", 1, "Staging")
    with mlflow.start_run():
        plain = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    ws.models.register(plain.model_uri, "no_features")
    ws.features.publish_table(name="main.fs.daily")
    # A Redis store that has gone away since: the page says so instead of failing.
    with _redis_server() as redis_uri:
        ws.features.publish_table(name="main.fs.daily", online_store=redis_uri)
        ws.features.close()
    ws.features.write_table("main.fs.daily", daily.assign(spend_7d=daily.spend_7d + 1))
    yield ws
    ws.close()


def test_feature_tables_are_listed(features_ws):
    features_ws.configure_mlflow()
    page = _client(features_ws).get("/ui/features")
    assert page.status_code == 200
    row = page.text.split('data-testid="feature-table-main.fs.daily"')[1].split("</tr>")[0]
    assert "<code>customer_id</code>" in row and "<code>ts</code>" in row
    assert "Spend per customer" in row


def test_feature_table_page_shows_keys_features_models_and_online_state(features_ws):
    features_ws.configure_mlflow()
    client = _client(features_ws)
    page = client.get("/ui/features/main.fs.daily")
    assert page.status_code == 200
    assert '<dd data-testid="primary-keys"><code>customer_id</code></dd>' in page.text
    assert '<dd data-testid="timeseries-column"><code>ts</code></dd>' in page.text
    features = page.text.split('data-testid="features"')[1].split("</table>")[0]
    spend = features.split('data-column="spend_7d"')[1].split("</tr>")[0]
    assert "<code>double</code>" in spend and "Spend over 7 days" in spend
    models = page.text.split('data-testid="models"')[1].split("</table>")[0]
    assert "no_features" not in models
    registered = _text(models.split('data-model="spend_model"')[1].split("</tr>")[0])
    assert "Staging" in registered and "feature spec, log_model record" in registered
    # Registered after logging: only its spec knows the registered name; one row, not two.
    later = _text(models.split('data-model="spend_later"')[1].split("</tr>")[0])
    assert "@champion" in later and "feature spec, log_model record" in later
    assert "not registered" not in models
    assert 'href="/#/models/spend_later/versions/1"' in models
    assert re.search(r'href="/#/experiments/\d+/runs/[0-9a-f]{32}"', models)
    online = page.text.split('data-testid="online-stores"')[1].split("</table>")[0]
    assert "online.db" in online and '<td data-testid="online-rows">2</td>' in online
    assert "redis://127.0.0.1" in online
    assert online.count("1 version behind") == 2  # written to after publishing
    # Rows in each store now, fetched by htmx after the page (by index, never by URI).
    stores = re.findall(r'hx-get="(/ui/features/main.fs.daily/online/\d+)"', online)
    assert len(stores) == 2
    answers = {_text(client.get(url).text) for url in stores}
    assert "2" in answers
    assert any(a.startswith("unreachable") and "redis" in a.lower() for a in answers), answers
    for bad in ("7", "x"):
        assert client.get(f"/ui/features/main.fs.daily/online/{bad}").status_code == 404
    assert 'href="/ui/catalog/main/fs/daily"' in page.text


def test_store_passwords_are_never_shown():
    assert _shown_uri("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert _shown_uri("rediss://app:s3cret@cache/1") == "rediss://app:***@cache/1"
    assert _shown_uri("sqlite:////srv/online.db") == "sqlite:////srv/online.db"


def test_unknown_feature_table_gives_an_error_page(features_ws):
    answer = _client(features_ws).get("/ui/features/main.fs.nope")
    assert answer.status_code == 404
    assert "main.fs.nope" in answer.text and "main.fs.daily" in answer.text


# ------------------------------------------------------------------ browser
@pytest.mark.server
def test_browse_catalog_time_travel_and_feature_table(page, ui_server, demo_home, shot):
    ws = lakebox.Workspace(demo_home)
    # An extra table of our own whose schema changed: version 1 added a column.
    name = f"ui_{uuid.uuid4().hex[:8]}"
    ws.tables.write(f"main.uitest.{name}", pd.DataFrame({"id": [1, 2], "city": ["Oslo", "Lima"]}))
    ws.tables.write(
        f"main.uitest.{name}",
        pd.DataFrame({"id": [3], "city": ["Pune"], "rating": [4.5]}),
        merge_schema=True,
    )
    activity_v0 = len(ws.tables.read("main.raw.activity", version=0, columns=["customer_id"]))
    activity_now = len(ws.tables.read("main.raw.activity", columns=["customer_id"]))
    assert activity_v0 != activity_now

    page.goto("/ui/catalog")
    shot(page, "catalog")
    page.click('[data-testid="schema-main-raw"]')
    page.wait_for_url("**/ui/catalog/main/raw")
    page.click('[data-testid="table-activity"]')
    page.wait_for_url("**/ui/catalog/main/raw/activity")
    rows = page.locator('[data-testid="num-rows"]')
    assert rows.inner_text().replace(",", "") == str(activity_now)
    assert page.locator('[data-testid="partition-columns"]').inner_text() == "day"
    shot(page, "catalog-table-latest")
    page.select_option('[data-testid="version-select"]', "0")
    page.wait_for_selector('#snapshot[data-version="0"]')
    assert rows.inner_text().replace(",", "") == str(activity_v0)
    assert page.url.endswith("/ui/catalog/main/raw/activity?version=0")
    assert "time travel" in page.locator('[data-testid="snapshot"] h2').first.inner_text()
    shot(page, "catalog-time-travel")

    # Our own table: the older version has the older schema and rows.
    page.goto(f"/ui/catalog/main/uitest/{name}")
    assert page.locator('[data-testid="schema"] tr[data-column="rating"]').count() == 1
    page.select_option('[data-testid="version-select"]', "0")
    page.wait_for_selector('#snapshot[data-version="0"]')
    assert page.locator('[data-testid="schema"] tr[data-column="rating"]').count() == 0
    sample = page.locator('[data-testid="sample"]').inner_text()
    assert "Oslo" in sample and "Pune" not in sample
    page.reload()  # the address carries the version
    assert page.locator("#snapshot").get_attribute("data-version") == "0"

    # The demo's monitored inference log links to its monitor dashboard.
    monitored = ws.monitors.list()[0].table_name
    catalog, schema, _ = monitored.split(".")
    page.goto(f"/ui/catalog/{catalog}/{schema}")
    assert page.locator(f'a[href="/ui/monitors/{monitored}"]').count() == 1

    # The feature table behind the demo model.
    page.goto("/ui/features")
    page.click('[data-testid="feature-table-main.fs.customer_daily"]')
    page.wait_for_url("**/ui/features/main.fs.customer_daily")
    table = ws.features.get_table("main.fs.customer_daily")
    keys = [k for k in table.primary_keys if k not in table.timeseries_columns]
    assert page.locator('[data-testid="primary-keys"]').inner_text() == ", ".join(keys)
    assert page.locator('[data-testid="timeseries-column"]').inner_text() == "ts"
    model = page.locator('[data-testid="model-churn_features"]')
    assert model.is_visible()
    assert any(m["name"] == "churn_features" for m in table.models)
    published = table.online_stores[0]["num_rows"]
    assert page.locator('[data-testid="online-rows"]').first.inner_text() == f"{published:,}"
    live = page.locator('[data-testid="online-live"] [data-count]').first
    live.wait_for()
    assert live.inner_text() == f"{published:,}"  # the demo store holds what was published
    shot(page, "feature-table")
    page.click('[data-testid="catalog-link"]')
    page.wait_for_url("**/ui/catalog/main/fs/customer_daily")
    assert page.locator('[data-testid="feature-link"]').is_visible()
    ws.close()
