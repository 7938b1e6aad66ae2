"""Three-level table names: ``catalog.schema.table``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakebox.errors import InvalidName

__all__ = ["DEFAULT_CATALOG", "DEFAULT_SCHEMA", "TableName", "check_part"]

DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_FORMAT = (
    "Names are catalog.schema.table (or schema.table, or table, resolved against "
    f"'{DEFAULT_CATALOG}' and '{DEFAULT_SCHEMA}'); each part starts with a letter or '_' "
    "and holds only letters, digits and '_'."
)


def check_part(part: str, *, what: str, full: str) -> str:
    """Validate one name part and return it lower-cased (names are case-insensitive)."""
    if not isinstance(part, str) or not _PART.match(part):
        raise InvalidName(f"Invalid {what} {part!r} in name {full!r}. {_FORMAT}")
    return part.lower()


@dataclass(frozen=True, order=True)
class TableName:
    """A resolved, validated ``catalog.schema.table`` name."""

    catalog: str
    schema: str
    table: str

    @classmethod
    def parse(
        cls,
        name: str | TableName,
        *,
        default_catalog: str = DEFAULT_CATALOG,
        default_schema: str = DEFAULT_SCHEMA,
    ) -> TableName:
        """Parse one-, two- or three-part names.

        >>> TableName.parse("sales.orders")
        TableName(catalog='main', schema='sales', table='orders')
        """
        if isinstance(name, TableName):
            return name
        if not isinstance(name, str) or not name.strip():
            raise InvalidName(f"Table name must be a non-empty string, got {name!r}. {_FORMAT}")
        parts = name.split(".")
        if len(parts) > 3:
            raise InvalidName(f"Invalid table name {name!r}: too many parts. {_FORMAT}")
        parts = [default_catalog, default_schema][: 3 - len(parts)] + parts
        catalog, schema, table = parts
        return cls(
            check_part(catalog, what="catalog", full=name),
            check_part(schema, what="schema", full=name),
            check_part(table, what="table", full=name),
        )

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"

    def __str__(self) -> str:
        return self.full_name
