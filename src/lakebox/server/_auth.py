"""Bearer-token authentication for every HTTP route except health checks."""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TOKEN_COOKIE", "TokenAuthMiddleware"]

TOKEN_COOKIE = "lakebox_token"
_OPEN_PATHS = ("/health", "/ready", "/ui/login")
_OPEN_PREFIXES = ("/ui/static/",)


class TokenAuthMiddleware:
    """Require ``Authorization: Bearer <token>`` (API clients, MLflow's ``MLFLOW_TRACKING_TOKEN``,
    databricks-sdk). Browsers sign in on ``/ui/login`` (workspace pages redirect there) or open
    ``/?token=<token>`` once; the token is then kept in a cookie so the MLflow UI and workspace
    pages work."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in _OPEN_PATHS or path.startswith(_OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        given, from_query = self._token(scope)
        if given is not None and hmac.compare_digest(given, self.token):
            if not from_query:
                await self.app(scope, receive, send)
                return

            async def set_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    cookie = (
                        f"{TOKEN_COOKIE}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
                    )
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            await self.app(scope, receive, set_cookie)
            return
        if scope["method"] == "GET" and (path == "/ui" or path.startswith("/ui/")):
            # A browser on a workspace page without the token: show the login form.
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/ui/login?next=" + quote(path).encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(
            {
                "error_code": "UNAUTHENTICATED",
                "message": "Missing or invalid token: send 'Authorization: Bearer "
                "<token>' (the token is [server] token in lakebox.toml or "
                "LAKEBOX_TOKEN).",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _token(scope: Scope) -> tuple[bytes | None, bool]:
        cookie_value = None
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return value[7:].strip(), False
            if name == b"cookie":
                morsel = SimpleCookie(value.decode("latin-1")).get(TOKEN_COOKIE)
                cookie_value = morsel.value.encode() if morsel else None
        if cookie_value is not None:
            return cookie_value, False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0].encode(), True
        return None, False
