"""Cross-site request protection for the UI's write actions.

Every page sets a random ``lakebox_csrf`` cookie (SameSite=Strict); a POST must send the same
value back in the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx sends the
header, see ``base.html``), and its ``Origin``, when the browser sends one, must be this server.
A page on another site can neither read the cookie nor set the header, so it cannot forge the
pair; this holds with and without a configured token.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from lakebox.errors import PermissionDenied

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "CSRF_HEADER", "csrf_token", "require_csrf", "set_cookie"]

CSRF_COOKIE = "lakebox_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's value, or a new one to set."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_cookie(response: Response, token: str) -> None:
    """Set the CSRF cookie on a page response (readable by the page, never by other sites)."""
    response.set_cookie(CSRF_COOKIE, token, path="/", samesite="strict", httponly=False)


async def require_csrf(request: Request) -> None:
    """FastAPI dependency for UI POST routes: refuse a request another site could have sent."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise PermissionDenied(
            f"Cross-site request refused: origin {origin!r} is not this server. "
            "Use the lakebox pages themselves to make changes."
        )
    expected = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise PermissionDenied(
            "Missing or stale CSRF token: reload the page and try again "
            f"(a POST must send the {CSRF_COOKIE!r} cookie's value as {CSRF_FIELD!r})."
        )
