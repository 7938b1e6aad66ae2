"""``ws.functions``: Python UDFs stored with source and signature."""

import math
import textwrap

import pytest

from lakebox.errors import AlreadyExists, InvalidInput, NotFound

LIMIT = 3


def spend_per_session(spend: float, sessions: int) -> float:
    return spend / sessions if sessions else 0.0


def log_spend(spend: float) -> float:
    return math.log1p(spend)


def uses_constant(x: int) -> int:
    return x * LIMIT


def test_create_stores_source_and_signature(ws):
    info = ws.functions.create("main.fs.spend_per_session", spend_per_session, comment="ratio")
    got = ws.functions.get("main.fs.spend_per_session")
    assert got.source.startswith("def spend_per_session(spend: float, sessions: int)")
    assert got.parameters == [
        {"name": "spend", "type": "float"},
        {"name": "sessions", "type": "int"},
    ]
    assert got.return_type == "float" and got.comment == "ratio" == info.comment
    fn = ws.functions.load("main.fs.spend_per_session")
    assert fn(10.0, 4) == 2.5 and fn(1.0, 0) == 0.0
    assert [f.full_name for f in ws.functions.list()] == ["main.fs.spend_per_session"]


def test_modules_used_are_recorded(ws):
    info = ws.functions.create("main.fs.log_spend", log_spend)
    assert info.imports == {"math": "math"}
    assert ws.functions.load("main.fs.log_spend")(0.0) == 0.0


def test_module_reference(ws, tmp_path, monkeypatch):
    (tmp_path / "my_udfs.py").write_text(
        textwrap.dedent("""
        def double(x: int) -> int:
            return 2 * x
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ws.functions.create("main.fs.double", "my_udfs:double")
    assert ws.functions.load("main.fs.double")(4) == 8
    with pytest.raises(NotFound, match="has no function 'tripel'"):
        ws.functions.create("main.fs.x", "my_udfs:tripel")
    with pytest.raises(InvalidInput, match="module:function"):
        ws.functions.create("main.fs.x", "my_udfs.double")


def test_functions_a_model_could_not_carry_are_refused(ws):
    with pytest.raises(InvalidInput, match=r"global name\(s\) \['LIMIT'\]"):
        ws.functions.create("main.fs.c", uses_constant)
    with pytest.raises(InvalidInput, match="plain `def`"):
        ws.functions.create("main.fs.l", lambda x: x)

    def outer():
        y = 1

        def inner(x):
            return x + y

        return inner

    with pytest.raises(InvalidInput, match="enclosing function"):
        ws.functions.create("main.fs.i", outer())
    assert ws.functions.list() == []


def test_replace_and_delete(ws):
    ws.functions.create("main.fs.f", spend_per_session)
    with pytest.raises(AlreadyExists, match="replace=True"):
        ws.functions.create("main.fs.f", log_spend)
    ws.functions.create("main.fs.f", log_spend, replace=True)
    assert ws.functions.get("main.fs.f").function_name == "log_spend"
    ws.functions.delete("main.fs.f")
    with pytest.raises(NotFound, match="does not exist"):
        ws.functions.get("main.fs.f")
