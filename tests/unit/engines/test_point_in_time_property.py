"""Point-in-time joins agree with a brute-force reference on random data: ties between lookup
and feature times, rows that arrive for the past, null values, missing keys and lookback
windows."""

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as ds
from hypothesis import given, settings
from hypothesis import strategies as st

from lakebox.engines import FeatureJoin, TableSnapshot, get_engine

BASE = datetime(2024, 1, 1)

feature_rows = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 48),
        st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)),
    ),
    max_size=40,
    unique_by=lambda r: (r[0], r[1]),
)
entity_rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 4)), st.one_of(st.none(), st.integers(0, 50))),
    min_size=1,
    max_size=40,
)
lookbacks = st.one_of(st.none(), st.integers(0, 30).map(lambda h: timedelta(hours=h)))
defaults = st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))


def reference(features, entities, lookback, default):
    """For each entity row: the newest feature row at or before its time (within lookback)."""
    out = []
    for key, hour in entities:
        best = None
        if key is not None and hour is not None:
            t = BASE + timedelta(hours=hour)
            for fkey, fhour, value in features:
                ft = BASE + timedelta(hours=fhour)
                if fkey != key or ft > t or (lookback is not None and ft < t - lookback):
                    continue
                if best is None or ft > best[0]:
                    best = (ft, value)
        value = None if best is None else best[1]
        out.append(default if value is None else value)
    return out


def as_tables(features, entities):
    # rows arrive out of time order ("late" rows), as they do in real feature pipelines
    features = sorted(features, key=lambda r: (-r[2] if r[2] is not None else 0, r[0]))
    ftable = pa.table(
        {
            "k": pa.array([r[0] for r in features], pa.int64()),
            "ts": pa.array([BASE + timedelta(hours=r[1]) for r in features], pa.timestamp("us")),
            "x": pa.array([r[2] for r in features], pa.float64()),
        }
    )
    etable = pa.table(
        {
            "id": pa.array([r[0] for r in entities], pa.int64()),
            "t": pa.array(
                [None if r[1] is None else BASE + timedelta(hours=r[1]) for r in entities],
                pa.timestamp("us"),
            ),
            "row": pa.array(range(len(entities)), pa.int64()),
        }
    )
    return ftable, etable


@settings(max_examples=150, deadline=None)
@given(feature_rows, entity_rows, lookbacks, defaults)
def test_asof_join_matches_brute_force(features, entities, lookback, default):
    ftable, etable = as_tables(features, entities)
    join = FeatureJoin(
        TableSnapshot("f", "", 0, ds.dataset(ftable)),
        [("id", "k")],
        {"x": "x"},
        "t",
        "ts",
        lookback,
        {} if default is None else {"x": default},
    )
    out = get_engine("local").join_features(etable, [join])
    assert out.column("row").to_pylist() == list(range(len(entities)))
    assert out.column("x").to_pylist() == reference(features, entities, lookback, default)
