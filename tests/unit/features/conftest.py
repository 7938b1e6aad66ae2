"""Shared data for feature store tests."""

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def daily_data():
    """Daily features of three customers; customer 2 has a gap, customer 3 starts late."""
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 3],
            "ts": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-01", "2024-01-04", "2024-01-06"]
            ),
            "sessions_7d": [1, 2, 5, 0, 3, 7],
            "spend_7d": [10.0, 20.0, 50.0, 0.0, 9.0, 70.0],
        }
    )


@pytest.fixture
def daily(daily_data):
    return daily_data.copy()


@pytest.fixture
def feature_table(ws, daily):
    ws.features.create_table(
        name="main.fs.daily",
        primary_keys=["customer_id"],
        timeseries_columns=["ts"],
        df=daily,
        description="daily usage",
    )
    return "main.fs.daily"
