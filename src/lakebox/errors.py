"""Errors raised by lakebox.

Every error a user can cause is a :class:`LakeboxError`. Each class carries a stable
``error_code`` (Databricks-style, so REST clients can branch on it) and the HTTP status the
server maps it to. Messages name the thing, the bad value and the fix.

Hierarchy::

    LakeboxError                    500 INTERNAL_ERROR
    ├── InvalidInput                400 INVALID_PARAMETER_VALUE
    │   ├── InvalidName             400 INVALID_PARAMETER_VALUE
    │   ├── SchemaMismatch          400 INVALID_PARAMETER_VALUE
    │   └── SettingsError           400 INVALID_PARAMETER_VALUE
    ├── NotFound                    404 RESOURCE_DOES_NOT_EXIST
    ├── AlreadyExists               409 RESOURCE_ALREADY_EXISTS
    ├── Conflict                    409 RESOURCE_CONFLICT
    ├── PermissionDenied            403 PERMISSION_DENIED
    ├── Unauthenticated             401 UNAUTHENTICATED
    └── MissingDependency           501 FEATURE_DISABLED
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AlreadyExists",
    "Conflict",
    "InvalidInput",
    "InvalidName",
    "LakeboxError",
    "MissingDependency",
    "NotFound",
    "PermissionDenied",
    "SchemaMismatch",
    "SettingsError",
    "Unauthenticated",
    "close_matches",
]


class LakeboxError(Exception):
    """Root of every error lakebox raises on purpose."""

    error_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, str]:
        """The error as Databricks REST APIs report it."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidInput(LakeboxError):
    """A value given by the user is not acceptable."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400


class InvalidName(InvalidInput):
    """A table, schema, catalog or other name is malformed."""


class SchemaMismatch(InvalidInput):
    """Data does not fit the schema of the table it is written to."""


class SettingsError(InvalidInput):
    """``lakebox.toml`` or a setting passed in code is invalid."""


class NotFound(LakeboxError):
    """The named thing does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExists(LakeboxError):
    """Something with that name already exists."""

    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class Conflict(LakeboxError):
    """The operation conflicts with the current state (e.g. a concurrent commit)."""

    error_code = "RESOURCE_CONFLICT"
    http_status = 409


class PermissionDenied(LakeboxError):
    """The caller may not do this."""

    error_code = "PERMISSION_DENIED"
    http_status = 403


class Unauthenticated(LakeboxError):
    """No valid credentials were given."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class MissingDependency(LakeboxError):
    """An optional dependency is needed for this feature."""

    error_code = "FEATURE_DISABLED"
    http_status = 501

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install 'lakebox[{extra}]'"
        )


def close_matches(word: str, candidates: Iterable[str], *, n: int = 3) -> str:
    """A ' Did you mean ...?' suffix for an error message, or '' when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
