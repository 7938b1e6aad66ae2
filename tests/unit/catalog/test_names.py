import pytest

from lakebox.catalog import TableName
from lakebox.errors import InvalidName


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("orders", "main.default.orders"),
        ("sales.orders", "main.sales.orders"),
        ("prod.sales.orders", "prod.sales.orders"),
        ("Main.Sales.Orders", "main.sales.orders"),
        ("_a.b_1.c2", "_a.b_1.c2"),
    ],
)
def test_resolves_short_names(name, full):
    assert TableName.parse(name).full_name == full


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a..b", "a.b.c.d", "a/b", "../etc", "a b", "1abc", "a.b-c", "a.", ".a", "x;drop"],
)
def test_rejects_bad_names_with_the_format(bad):
    with pytest.raises(InvalidName) as info:
        TableName.parse(bad)
    assert "catalog.schema.table" in str(info.value)


def test_non_string():
    with pytest.raises(InvalidName):
        TableName.parse(None)  # type: ignore[arg-type]
