"""Request parsing as MLflow's scoring server accepts it, and precise errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lakebox.errors import InvalidInput
from lakebox.serving import ColumnSchema, parse_request

SCHEMA = ColumnSchema(
    (("sessions", "double", True), ("spend", "double", True), ("tickets", "long", True))
)
ROWS = [{"sessions": 1.0, "spend": 2.5, "tickets": 3}, {"sessions": 4, "spend": 0.0, "tickets": 0}]


def _parse(doc, schema=SCHEMA, content_type="application/json"):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_request(body, content_type, schema)


@pytest.mark.parametrize(
    "doc",
    [
        {"dataframe_records": ROWS},
        {
            "dataframe_split": {
                "columns": ["sessions", "spend", "tickets"],
                "data": [[1.0, 2.5, 3], [4, 0.0, 0]],
            }
        },
        {
            "dataframe_split": {
                "columns": ["tickets", "spend", "sessions"],
                "data": [[3, 2.5, 1.0], [0, 0.0, 4]],
            }
        },
        {"instances": ROWS},
        {"instances": [[1.0, 2.5, 3], [4, 0.0, 0]]},
        {"inputs": {"sessions": [1.0, 4], "spend": [2.5, 0.0], "tickets": [3, 0]}},
        {"inputs": ROWS},
        b"sessions,spend,tickets\n1.0,2.5,3\n4,0.0,0\n",
    ],
)
def test_every_format_gives_the_same_frame(doc):
    content_type = "text/csv" if isinstance(doc, bytes) else "application/json"
    parsed = _parse(doc, content_type=content_type)
    frame = parsed.data
    assert list(frame.columns) == ["sessions", "spend", "tickets"]
    assert frame["sessions"].tolist() == [1.0, 4.0]
    assert frame["spend"].dtype == np.float64 and frame["tickets"].dtype == np.int64
    assert frame["tickets"].tolist() == [3, 0]
    assert parsed.num_rows == 2


def test_params_and_client_request_id_pass_through():
    parsed = _parse({"dataframe_records": ROWS, "params": {"k": 3}, "client_request_id": "r1"})
    assert parsed.params == {"k": 3} and parsed.client_request_id == "r1"


def test_no_schema_builds_a_plain_frame():
    parsed = _parse({"dataframe_records": [{"a": 1, "b": "x"}]}, schema=None)
    assert parsed.data.to_dict("records") == [{"a": 1, "b": "x"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "Malformed JSON"),
        (b"", "Empty request body"),
        (b"[1, 2]", "must be a JSON object"),
        ({}, "exactly one of .* it has none"),
        ({"dataframe_records": ROWS, "instances": ROWS}, "it has 2"),
        ({"dataframe_record": ROWS}, "Unknown field"),
        ({"dataframe_records": []}, "empty"),
        ({"dataframe_records": [1, 2]}, r"dataframe_records\[0\] must be an object"),
        (
            {"dataframe_records": [{"sessions": "a", "spend": 1.0, "tickets": 1}]},
            "Column 'sessions' expects double, got 'a' \\(str\\) in row 0",
        ),
        (
            {"dataframe_records": [{"sessions": 1.0, "spend": 1.0, "tickets": 1.5}]},
            "Column 'tickets' expects long, got 1.5",
        ),
        (
            {"dataframe_records": [{"sessions": 1.0, "spend": 1.0, "tickets": True}]},
            "Column 'tickets' expects long",
        ),
        (
            {"dataframe_records": [{"sessions": 1.0, "tickets": 1}]},
            "Missing column 'spend' \\(expected double\\)",
        ),
        (
            {"dataframe_records": [{"sessions": 1.0, "spend": 1.0, "tickets": 1, "zzz": 2}]},
            "Unexpected column\\(s\\) \\['zzz'\\]",
        ),
        (
            {
                "dataframe_records": [
                    {"sessions": 1.0, "spend": 1.0, "tickets": 1},
                    {"sessions": 1.0, "spend": 1.0},
                ]
            },
            "Row 1 of dataframe_records lacks column 'tickets'",
        ),
        (
            {"dataframe_split": {"columns": ["sessions"], "data": [[1.0, 2.0]]}},
            r"data\[0\] must be a list of 1 value",
        ),
        ({"dataframe_split": {"data": []}}, "non-empty list"),
        ({"instances": [[1.0, 2.0]]}, "list of 3 value"),
        ({"inputs": {"sessions": [1.0], "spend": [1.0, 2.0], "tickets": [1]}}, "equal length"),
        ({"dataframe_records": ROWS, "params": [1]}, "params must be a JSON object"),
    ],
)
def test_bad_input_names_the_problem(body, message):
    with pytest.raises(InvalidInput, match=message):
        _parse(body)


def test_bad_csv_and_content_type():
    with pytest.raises(InvalidInput, match="no rows"):
        _parse(b"sessions,spend,tickets\n", content_type="text/csv")
    with pytest.raises(InvalidInput, match="Column 'spend' expects double"):
        _parse(b"sessions,spend,tickets\n1.0,abc,3\n", content_type="text/csv")
    with pytest.raises(InvalidInput, match="Unsupported Content-Type"):
        _parse(b"x", content_type="application/xml")
