import pandas as pd
import pytest

from lakebox.errors import InvalidInput, NotFound


@pytest.fixture
def sales(ws):
    ws.tables.write(
        "main.sales.orders",
        pd.DataFrame({"id": [1, 2, 3], "cust": [1, 1, 2], "amount": [5.0, 6.0, 7.0]}),
    )
    ws.tables.write("main.sales.orders", pd.DataFrame({"id": [4], "cust": [3], "amount": [8.0]}))
    ws.tables.write(
        "main.crm.customers", pd.DataFrame({"cust": [1, 2, 3], "name": ["a", "b", "c"]})
    )
    ws.tables.write("main.default.plain", pd.DataFrame({"x": [1]}))
    return ws


def test_three_two_and_one_part_names(sales):
    assert sales.sql("SELECT count(*) AS n FROM main.sales.orders").to_pylist() == [{"n": 4}]
    assert sales.sql("SELECT count(*) AS n FROM sales.orders")["n"][0].as_py() == 4
    assert sales.sql("SELECT x FROM plain")["x"][0].as_py() == 1


def test_joins_subqueries_and_pandas_output(sales):
    df = sales.sql(
        """
        SELECT c.name, sum(o.amount) AS total
        FROM main.sales.orders o JOIN main.crm.customers AS c ON o.cust = c.cust
        WHERE o.id IN (SELECT id FROM main.sales.orders WHERE amount > 5)
        GROUP BY c.name ORDER BY c.name""",
        output="pandas",
    )
    assert df.to_dict("list") == {"name": ["a", "b", "c"], "total": [6.0, 7.0, 8.0]}
    comma = sales.sql(
        "SELECT count(*) AS n FROM main.sales.orders o, main.crm.customers c WHERE o.cust = c.cust"
    )
    assert comma["n"][0].as_py() == 4


def test_version_and_timestamp_as_of(sales):
    old = sales.sql("SELECT count(*) AS n FROM main.sales.orders VERSION AS OF 0")
    assert old["n"][0].as_py() == 3
    ts = sales.tables.history("main.sales.orders")[-1]["timestamp"]
    at = sales.sql(
        f"SELECT count(*) AS n FROM main.sales.orders TIMESTAMP AS OF '{ts.isoformat()}'"
    )
    assert at["n"][0].as_py() == 3
    both = sales.sql(
        "SELECT (SELECT count(*) FROM main.sales.orders) - "
        "(SELECT count(*) FROM main.sales.orders VERSION AS OF 0) AS d"
    )
    assert both["d"][0].as_py() == 1


def test_names_inside_strings_comments_and_ctes_are_left_alone(sales):
    result = sales.sql("""
        WITH recent AS (SELECT * FROM main.sales.orders) -- main.no.such
        SELECT 'main.no.such' AS s, count(*) AS n FROM recent""")
    assert result.to_pylist() == [{"s": "main.no.such", "n": 4}]


def test_errors(sales):
    with pytest.raises(NotFound, match="Did you mean 'main.sales.orders'"):
        sales.sql("SELECT * FROM main.sales.ordres")
    with pytest.raises(NotFound, match="latest version is 1"):
        sales.sql("SELECT * FROM main.sales.orders VERSION AS OF 9")
    with pytest.raises(InvalidInput, match="SQL error"):
        sales.sql("SELEC 1")
    with pytest.raises(InvalidInput, match="empty"):
        sales.sql("  ")
