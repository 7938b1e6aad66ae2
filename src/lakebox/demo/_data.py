"""Generated churn data: customers, daily activity and late-arriving labels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

__all__ = ["activity", "customers", "labels"]

START = date(2026, 1, 1)


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "plan": rng.choice(["basic", "plus", "pro"], size=n, p=[0.5, 0.3, 0.2]),
            "signup_day": [START - timedelta(days=int(d)) for d in rng.integers(30, 700, n)],
        }
    )


def activity(
    customer_ids: np.ndarray, days: int, *, first_day: int = 0, shift: float = 0.0, seed: int = 1
) -> pd.DataFrame:
    """One row per customer and day; ``shift`` > 0 moves usage (the product change)."""
    rng = np.random.default_rng(seed + first_day)
    n = len(customer_ids)
    engagement = np.random.default_rng(seed).gamma(2.0, 1.0, n)  # stable per customer
    frames = []
    for d in range(first_day, first_day + days):
        day = START + timedelta(days=d)
        sessions = rng.poisson(engagement * (1.0 - shift))
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": customer_ids,
                    "day": day.isoformat(),
                    "ts": pd.Timestamp(day) + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
                    "sessions": sessions.astype("int64"),
                    "spend": np.round(sessions * rng.gamma(2.0, 3.0 + shift * 4, n), 2),
                    "tickets": rng.poisson(0.05 + 0.1 * (engagement < 1.0), n).astype("int64"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def labels(daily: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """``churned`` per customer at the last day seen: low usage and tickets raise the odds."""
    rng = np.random.default_rng(seed)
    per = daily.groupby("customer_id").agg(
        sessions=("sessions", "mean"), tickets=("tickets", "sum"), ts=("ts", "max")
    )
    logit = -0.5 - 1.2 * per["sessions"] + 0.8 * per["tickets"]
    p = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": per.index.to_numpy(),
            "event_ts": per["ts"].to_numpy(),
            "churned": (rng.random(len(per)) < p).astype("int64"),
        }
    )
