"""create_training_set agrees with a brute-force point-in-time reference on random Delta
feature tables (ties, late rows, null values, unknown keys, lookback windows, defaults)."""

import itertools
from datetime import datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakebox.features import FeatureLookup

BASE = datetime(2024, 1, 1)
_names = itertools.count()

feature_rows = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 30),
        st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda r: (r[0], r[1]),
)
entity_rows = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 32)), min_size=1, max_size=25)


def reference(features, entities, lookback, default):
    out = []
    for key, hour in entities:
        t = BASE + timedelta(hours=hour)
        candidates = [
            (BASE + timedelta(hours=h), v)
            for k, h, v in features
            if k == key
            and BASE + timedelta(hours=h) <= t
            and (lookback is None or BASE + timedelta(hours=h) >= t - lookback)
        ]
        value = max(candidates)[1] if candidates else None
        out.append(default if value is None else value)
    return out


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    feature_rows,
    entity_rows,
    st.one_of(st.none(), st.integers(0, 12).map(lambda h: timedelta(hours=h))),
    st.one_of(st.none(), st.just(-1.0)),
)
def test_training_set_matches_brute_force(ws, features, entities, lookback, default):
    name = f"main.prop.t{next(_names)}"
    rows = sorted(features, key=lambda r: -r[1])  # written newest first: late rows
    ws.features.create_table(
        name=name,
        primary_keys="k",
        timeseries_columns="ts",
        df=pd.DataFrame(
            {
                "k": [r[0] for r in rows],
                "ts": [BASE + timedelta(hours=r[1]) for r in rows],
                "x": pd.array([r[2] for r in rows], dtype="Float64"),
            }
        ),
    )
    df = pd.DataFrame(
        {"id": [e[0] for e in entities], "t": [BASE + timedelta(hours=e[1]) for e in entities]}
    )
    lookup = FeatureLookup(
        name,
        "id",
        timestamp_lookup_key="t",
        lookback_window=lookback,
        default_values=None if default is None else {"x": default},
    )
    got = ws.features.create_training_set(df=df, feature_lookups=[lookup], label=None).load_df()
    assert got[["id", "t"]].equals(df)  # every entity row, in order
    values = [None if pd.isna(v) else float(v) for v in got["x"]]
    assert values == reference(features, entities, lookback, default)
