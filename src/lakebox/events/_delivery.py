"""Sending one event to one webhook: an HMAC-signed HTTP POST, or a job run."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from lakebox.errors import NotFound

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "DeliveryResult",
    "JobRunner",
    "Sender",
    "render_body",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Databricks-Signature"
EVENT_ID_HEADER = "X-Lakebox-Event-Id"
ATTEMPT_HEADER = "X-Lakebox-Delivery-Attempt"
NO_JOB_RUNNER = (
    "no job runner available: this lakebox has no jobs component, so job_spec "
    "webhooks cannot start runs yet"
)
# (job_id, job_parameters) -> run id
JobRunner = Callable[[str, dict[str, str]], Any]


def sign(secret: str, body: bytes) -> str:
    """``X-Databricks-Signature``: hex HMAC-SHA256 of the request body keyed by the secret.

    Example:
        >>> sign("s3cret", b'{"event": "MODEL_VERSION_CREATED"}')[:16]
        'd6bd9e0bc032c39b'
    """
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the valid :func:`sign` of ``body`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), signature)


def render_body(payload: dict[str, Any], webhook_id: str) -> bytes:
    """The JSON body a webhook receives: the event payload with its ``webhook_id``."""
    ordered = {
        "event": payload["event"],
        "webhook_id": webhook_id,
        **{k: v for k, v in payload.items() if k != "event"},
    }
    return json.dumps(ordered).encode()


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt did."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    body: str = ""
    permanent: bool = False  # retrying cannot help (no job runner, unknown job)


@dataclass(frozen=True)
class Target:
    """Where a webhook sends (the parts of a webhook the sender needs)."""

    webhook_id: str
    url: str | None = None
    secret: str | None = None
    authorization: str | None = None
    enable_ssl_verification: bool = True
    job_id: str | None = None


class Sender:
    """Sends event bodies to HTTP endpoints and jobs.

    Args:
        timeout: seconds for one HTTP request.
        job_runner: starts a job run for ``job_spec`` webhooks; ``None`` when no jobs component
            exists, in which case such deliveries fail with a clear reason.
    """

    def __init__(self, *, timeout: float = 10.0, job_runner: JobRunner | None = None) -> None:
        self.timeout = timeout
        self.job_runner = job_runner
        self._clients: dict[bool, httpx.Client] = {}

    def _client(self, verify: bool) -> httpx.Client:
        if verify not in self._clients:
            self._clients[verify] = httpx.Client(
                timeout=self.timeout, verify=verify, follow_redirects=False
            )
        return self._clients[verify]

    def send(
        self, target: Target, body: bytes, *, event_id: str, attempt: int = 1
    ) -> DeliveryResult:
        """Deliver ``body`` once; never raises for delivery failures."""
        if target.job_id is not None:
            return self._run_job(target, body)
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: event_id,
            ATTEMPT_HEADER: str(attempt),
            "User-Agent": "lakebox-webhooks",
        }
        if target.secret:
            headers[SIGNATURE_HEADER] = sign(target.secret, body)
        if target.authorization:
            headers["Authorization"] = target.authorization
        try:
            response = self._client(target.enable_ssl_verification).post(
                str(target.url), content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}")
        text = response.text[:2000]
        if 200 <= response.status_code < 300:
            return DeliveryResult(True, status_code=response.status_code, body=text)
        return DeliveryResult(
            False,
            status_code=response.status_code,
            body=text,
            error=f"HTTP {response.status_code}: {text[:300]}",
        )

    def _run_job(self, target: Target, body: bytes) -> DeliveryResult:
        if self.job_runner is None:
            return DeliveryResult(False, error=NO_JOB_RUNNER, permanent=True)
        try:
            run_id = self.job_runner(str(target.job_id), {"event": body.decode()})
        except NotFound as exc:
            return DeliveryResult(False, error=exc.message, permanent=True)
        except Exception as exc:  # a job runner failure is a failed attempt, retried
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}")
        return DeliveryResult(True, body=json.dumps({"run_id": run_id}))

    def close(self) -> None:
        """Close HTTP connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
