"""``ws.functions``: Python UDFs registered in the workspace catalog.

A function is stored as its source, the modules it uses and its signature, so a model logged
with a training set can carry it and compute it anywhere lakebox is installed.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import json
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lakebox.catalog import TableName
from lakebox.errors import AlreadyExists, InvalidInput, NotFound, close_matches
from lakebox.features import _schema as meta
from lakebox.metadata import MetadataDB
from lakebox.metadata._db import utcnow

__all__ = ["FunctionInfo", "Functions", "apply_function"]

_ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_()}


@dataclass
class FunctionInfo:
    """A registered Python UDF: everything needed to rebuild and call it.

    Attributes:
        full_name: ``catalog.schema.function``.
        function_name: the ``def`` name inside ``source``.
        source: the function's source code.
        imports: alias -> module for the modules the function uses (``{"np": "numpy"}``).
        parameters: ``[{"name": ..., "type": ...}]`` in order.
        return_type: the return annotation, if any.
    """

    full_name: str
    function_name: str
    source: str
    imports: dict[str, str] = field(default_factory=dict)
    parameters: list[dict[str, str | None]] = field(default_factory=list)
    return_type: str | None = None
    comment: str | None = None
    created_at: datetime | None = None

    @property
    def parameter_names(self) -> list[str]:
        return [str(p["name"]) for p in self.parameters]

    def compile(self) -> Callable[..., Any]:
        """Rebuild the callable from the stored source."""
        namespace: dict[str, Any] = {"__builtins__": builtins}
        for alias, module in self.imports.items():
            try:
                namespace[alias] = importlib.import_module(module)
            except ImportError:
                raise InvalidInput(
                    f"Function {self.full_name!r} needs module {module!r}, which "
                    "is not installed here."
                ) from None
        code = compile(self.source, f"<lakebox function {self.full_name}>", "exec")
        exec(code, namespace)
        fn: Callable[..., Any] = namespace[self.function_name]
        return fn

    def to_dict(self) -> dict[str, Any]:
        return {
            "full_name": self.full_name,
            "function_name": self.function_name,
            "source": self.source,
            "imports": self.imports,
            "parameters": self.parameters,
            "return_type": self.return_type,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionInfo:
        return cls(
            full_name=data["full_name"],
            function_name=data["function_name"],
            source=data["source"],
            imports=dict(data.get("imports") or {}),
            parameters=list(data.get("parameters") or []),
            return_type=data.get("return_type"),
            comment=data.get("comment"),
        )


def _type_name(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def describe(name: str, fn: Callable[..., Any] | str) -> FunctionInfo:
    """Turn a function (or ``"module:function"``) into a :class:`FunctionInfo`, refusing
    functions whose source cannot stand on its own."""
    if isinstance(fn, str):
        module_name, _, attr = fn.partition(":")
        if not module_name or not attr:
            raise InvalidInput(f"Function reference {fn!r} must look like 'module:function'.")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise NotFound(
                f"Cannot import module {module_name!r} for function {name!r}: {exc}."
            ) from None
        if not hasattr(module, attr):
            raise NotFound(
                f"Module {module_name!r} has no function {attr!r}."
                f"{close_matches(attr, dir(module))}"
            )
        fn = getattr(module, attr)
    if not isinstance(fn, types.FunctionType) or fn.__name__ == "<lambda>":
        raise InvalidInput(
            f"Function {name!r} must be a plain `def` function (not a lambda, "
            f"method or callable object), got {fn!r}."
        )
    if fn.__closure__:
        raise InvalidInput(
            f"Function {fn.__name__!r} uses variables of an enclosing function "
            f"({', '.join(fn.__code__.co_freevars)}); define it at module level."
        )
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise InvalidInput(
            f"The source of function {fn.__name__!r} is not available; define "
            "it in a file or pass 'module:function'."
        ) from None
    if source.lstrip().startswith("@"):
        raise InvalidInput(f"Function {fn.__name__!r} is decorated; register the plain function.")
    imports: dict[str, str] = {}
    bad = []
    for var, value in inspect.getclosurevars(fn).globals.items():
        if isinstance(value, types.ModuleType):
            imports[var] = value.__name__
        else:
            bad.append(var)
    if bad:
        raise InvalidInput(
            f"Function {fn.__name__!r} uses global name(s) {sorted(bad)} that a "
            "model could not carry; pass them as parameters or define them "
            "inside the function."
        )
    params = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise InvalidInput(
                f"Function {fn.__name__!r} takes *args/**kwargs; UDF parameters must be named."
            )
        params.append({"name": p.name, "type": _type_name(p.annotation)})
    return FunctionInfo(
        full_name=name,
        function_name=fn.__name__,
        source=source,
        imports=imports,
        parameters=params,
        return_type=_type_name(inspect.signature(fn).return_annotation),
    )


def apply_function(
    info: FunctionInfo, fn: Callable[..., Any], table: pa.Table, bindings: Mapping[str, str]
) -> pa.Array:
    """Call ``fn`` on every row of ``table`` (parameters bound to columns); nulls arrive as
    None."""
    names = list(bindings)
    columns = [table.column(bindings[p]).to_pylist() for p in names]
    results = []
    for i, values in (
        enumerate(zip(*columns, strict=False)) if columns else enumerate([()] * table.num_rows)
    ):
        try:
            results.append(fn(**dict(zip(names, values, strict=False))))
        except Exception as exc:
            raise InvalidInput(
                f"Function {info.full_name!r} failed on row {i} with inputs "
                f"{dict(zip(names, values, strict=False))}: {type(exc).__name__}: {exc}"
            ) from None
    arrow_type = _ARROW_TYPES.get(info.return_type or "")
    try:
        return pa.array(results, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(results)


class Functions:
    """The workspace's Python UDF registry, reached as ``ws.functions``.

    Example:
        >>> def spend_per_session(spend: float, sessions: int) -> float:
        ...     return spend / sessions if sessions else 0.0
        >>> ws.functions.create("main.fs.spend_per_session", spend_per_session)  # doctest: +SKIP
    """

    def __init__(self, db: MetadataDB) -> None:
        self._db = db

    def create(
        self,
        name: str,
        fn: Callable[..., Any] | str,
        *,
        comment: str | None = None,
        replace: bool = False,
    ) -> FunctionInfo:
        """Register a function under a three-level name.

        Args:
            name: ``catalog.schema.function``.
            fn: a module-level ``def`` function, or ``"module:function"``. Modules it uses are
                recorded; other globals are refused (a model could not carry them).
            comment: a description.
            replace: overwrite an existing function of that name.
        """
        full = TableName.parse(name).full_name
        info = describe(full, fn)
        info.comment = comment
        info.created_at = utcnow()
        row = {
            "full_name": full,
            "function_name": info.function_name,
            "source": info.source,
            "imports": json.dumps(info.imports),
            "parameters": json.dumps(info.parameters),
            "return_type": info.return_type,
            "comment": comment,
            "created_at": info.created_at,
        }
        with self._db.begin() as conn:
            if replace:
                conn.execute(delete(meta.functions).where(meta.functions.c.full_name == full))
            try:
                conn.execute(meta.functions.insert().values(**row))
            except IntegrityError:
                raise AlreadyExists(
                    f"Function {full!r} already exists; pass replace=True to overwrite it."
                ) from None
        return info

    def get(self, name: str) -> FunctionInfo:
        """The registered function ``name``."""
        full = TableName.parse(name).full_name
        with self._db.begin() as conn:
            row = conn.execute(
                select(meta.functions).where(meta.functions.c.full_name == full)
            ).first()
        if row is None:
            known = [f.full_name for f in self.list()]
            raise NotFound(
                f"Function {full!r} does not exist.{close_matches(full, known)} "
                "Register it with ws.functions.create(name, fn)."
            )
        return FunctionInfo(
            full_name=row.full_name,
            function_name=row.function_name,
            source=row.source,
            imports=json.loads(row.imports),
            parameters=json.loads(row.parameters),
            return_type=row.return_type,
            comment=row.comment,
            created_at=row.created_at,
        )

    def list(self) -> list[FunctionInfo]:
        """Every registered function, by name."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(meta.functions.c.full_name).order_by(meta.functions.c.full_name)
            ).all()
        return [self.get(r.full_name) for r in rows]

    def load(self, name: str) -> Callable[..., Any]:
        """The callable, rebuilt from the stored source."""
        return self.get(name).compile()

    def delete(self, name: str) -> None:
        """Remove a function."""
        full = self.get(name).full_name
        with self._db.begin() as conn:
            conn.execute(delete(meta.functions).where(meta.functions.c.full_name == full))
