"""Shared pieces of the OpenAPI document: the error model, empty answers, open models.

Route modules declare request bodies as :class:`Body` subclasses and answers as
:class:`Answer` subclasses. Both accept fields they do not name (Databricks clients send and
read more fields than lakebox names), so the document is truthful about the named fields
without refusing newer clients. Answers are validated against their model before they are
sent and serialized without fields the handler did not set (``**UNSET``), so the JSON stays
exactly what the handler built.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lakebox.errors import InvalidInput

__all__ = ["ERROR_RESPONSES", "UNSET", "Answer", "Body", "Empty", "ErrorResponse", "page_start"]


class ErrorResponse(BaseModel):
    """Databricks' error JSON."""

    error_code: str
    message: str


class Empty(BaseModel):
    """An empty JSON object, the answer of deletes and other commands."""

    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    """A JSON request body; numbers given for string fields are taken as strings."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    def fields(self) -> dict[str, Any]:
        """The fields the client sent (named or not), as plain JSON values."""
        return self.model_dump(exclude_unset=True)


class Answer(BaseModel):
    """A JSON answer; fields beyond the named ones pass through."""

    model_config = ConfigDict(extra="allow")


# Serialize answers with only the fields the handler set.
UNSET: dict[str, Any] = {"response_model_exclude_unset": True}


def _error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


# Declared on every lakebox route (``APIRouter(responses=ERROR_RESPONSES)``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error_doc("Invalid request: a parameter or body field is missing or has a bad value."),
    401: _error_doc("Missing or invalid bearer token."),
    404: _error_doc("The named resource (or API path) does not exist."),
    409: _error_doc("The resource already exists or conflicts with its current state."),
    500: _error_doc("Unexpected server error (details are in the server log)."),
}


def page_start(page_token: str | None, default: int = 0) -> int:
    """The offset a ``page_token`` (from a previous ``next_page_token``) stands for."""
    if not page_token:
        return default
    if not (page_token.isascii() and page_token.isdigit()) or len(page_token) > 18:
        raise InvalidInput(
            f"Invalid page_token {page_token!r}: pass the next_page_token of the previous page."
        )
    return int(page_token)
