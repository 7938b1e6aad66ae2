"""The dispatcher: delivers pending outbox rows to webhooks, in order per webhook, at least
once, with exponential backoff, a max-attempts limit and a dead letter.

Crash safety: a delivery is *claimed* (a lease with the dispatcher's host and pid) before it is
sent and marked done after. If the process dies in between, the lease is taken over (at once
when the owner is a dead process on this host, else when the lease expires) and the event is
sent again: receivers de-duplicate by the ``X-Lakebox-Event-Id`` header.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update

from lakebox.events import _schema as s
from lakebox.events._delivery import DeliveryResult, JobRunner, Sender, render_body
from lakebox.events._outbox import now_ms
from lakebox.events._webhooks import _row_to_webhook
from lakebox.metadata import MetadataDB

__all__ = ["Dispatcher", "DispatcherConfig"]

log = logging.getLogger("lakebox.events")


@dataclass(frozen=True)
class DispatcherConfig:
    """Retry and polling settings (``[events]`` in ``lakebox.toml``).

    Attempt ``n`` that fails is retried after ``backoff_seconds * 2**(n-1)`` seconds, capped at
    ``backoff_max_seconds``; after ``max_attempts`` failures the delivery is dead-lettered.
    """

    max_attempts: int = 8
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    poll_interval_seconds: float = 0.1
    timeout_seconds: float = 10.0
    lease_seconds: float = 60.0
    concurrency: int = 4
    batch_size: int = 50

    def backoff_ms(self, attempts: int) -> int:
        """Delay before the next try after ``attempts`` failed attempts."""
        delay = min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.backoff_max_seconds)
        return int(delay * 1000)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Dispatcher:
    """Delivers events from the outbox.

    Args:
        db: the metadata database holding the outbox.
        config: retry and polling settings.
        job_runner: starts a job run for ``job_spec`` webhooks (``None``: such deliveries fail
            with "no job runner available").

    Example:
        >>> dispatcher = ws.webhooks_dispatcher()                              # doctest: +SKIP
        >>> dispatcher.run_once()          # deliver what is due now; returns the count
        3
        >>> handle = dispatcher.start()    # or keep delivering in a background thread
        >>> dispatcher.stop()
    """

    def __init__(
        self,
        db: MetadataDB,
        *,
        config: DispatcherConfig | None = None,
        job_runner: JobRunner | None = None,
    ) -> None:
        self.db = db
        self.config = config or DispatcherConfig()
        self.sender = Sender(timeout=self.config.timeout_seconds, job_runner=job_runner)
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.config.concurrency), thread_name_prefix="lakebox-dispatch"
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running
    def run_once(self) -> int:
        """Deliver every delivery that is due now; returns how many attempts were made."""
        now = now_ms()
        with self.db.engine.connect() as conn:
            webhook_ids = [
                r[0]
                for r in conn.execute(
                    select(s.deliveries.c.webhook_id)
                    .distinct()
                    .where(s.deliveries.c.status == "PENDING")
                    .where(s.deliveries.c.next_attempt_at <= now)
                )
            ]
        if not webhook_ids:
            return 0
        if len(webhook_ids) == 1:
            return self._drain(webhook_ids[0])
        return sum(self._pool.map(self._drain, webhook_ids))

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Deliver until ``stop`` is set (or :meth:`stop` is called)."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # keep going: the database may be briefly unavailable
                log.exception("lakebox dispatcher: delivery round failed")
                busy = 0
            if not busy:
                stop.wait(self.config.poll_interval_seconds)

    def start(self) -> threading.Thread:
        """Run :meth:`run_forever` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name="lakebox-dispatcher", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the background thread and release connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._pool.shutdown(wait=True)
        self.sender.close()

    # ------------------------------------------------------------------ one webhook
    def _drain(self, webhook_id: str, *, limit: int = 500) -> int:
        """Deliver a webhook's due deliveries strictly in event order, a claimed batch at a
        time; a failure stops the batch (later events wait behind the retried one)."""
        done = 0
        while done < limit and not self._stop.is_set():
            now = now_ms()
            with self.db.engine.connect() as conn:
                rows = conn.execute(
                    select(s.deliveries, s.outbox.c.event_id, s.outbox.c.payload)
                    .join(s.outbox, s.outbox.c.seq == s.deliveries.c.seq)
                    .where(s.deliveries.c.webhook_id == webhook_id)
                    .where(s.deliveries.c.status == "PENDING")
                    .order_by(s.deliveries.c.seq)
                    .limit(self.config.batch_size)
                ).all()
                hook_row = conn.execute(
                    select(s.webhooks).where(s.webhooks.c.id == webhook_id)
                ).first()
            if not rows or rows[0].next_attempt_at > now or hook_row is None:
                return done
            batch = self._claim([r for r in rows if r.next_attempt_at <= now], now)
            if not batch:
                return done
            hook = _row_to_webhook(hook_row)
            if hook.status != "ACTIVE":
                reason = f"webhook is {hook.status} at delivery time"
                self._finish(
                    [(r, "SKIPPED", r.attempts, None, reason, 0, None) for r in batch],
                    log_attempts=False,
                )
                done += len(batch)
                continue
            outcomes, blocked = self._send_batch(hook, batch)
            self._finish(outcomes)
            unsent = batch[len(outcomes) :]
            if unsent:
                self._release(unsent)
            done += len(outcomes)
            if blocked:
                return done
        return done

    def _send_batch(self, hook: Any, batch: list[Any]) -> tuple[list[tuple[Any, ...]], bool]:
        outcomes: list[tuple[Any, ...]] = []
        target = hook.target()
        for row in batch:
            attempt = row.attempts + 1
            started = time.perf_counter()
            result = self.sender.send(
                target,
                render_body(json.loads(row.payload), hook.id),
                event_id=row.event_id,
                attempt=attempt,
            )
            duration = int((time.perf_counter() - started) * 1000)
            status, next_at = self._outcome(result, attempt)
            outcomes.append(
                (row, status, attempt, result.status_code, result.error, duration, next_at)
            )
            if status == "DEAD":
                log.warning(
                    "lakebox webhook delivery %s dead-lettered after %d attempt(s): %s",
                    row.id,
                    attempt,
                    result.error,
                )
            if status == "PENDING":
                return outcomes, True  # the head waits for its retry
        return outcomes, False

    def _claim(self, rows: list[Any], now: int) -> list[Any]:
        """Lease ``rows``; returns the leading run of rows now held by this dispatcher."""
        d = s.deliveries
        claimable = [
            d.c.lease_owner.is_(None),
            d.c.lease_until < now,
            d.c.lease_owner == self.owner,
        ]
        dead = {
            r.lease_owner
            for r in rows
            if r.lease_owner
            and r.lease_owner != self.owner
            and r.lease_until is not None
            and r.lease_until >= now
            and self._owner_dead(r.lease_owner)
        }
        if dead:
            claimable.append(d.c.lease_owner.in_(sorted(dead)))
        lease_until = now + int(self.config.lease_seconds * 1000)
        ids = [r.id for r in rows]
        with self.db.begin() as conn:
            conn.execute(
                update(d)
                .where(and_(d.c.id.in_(ids), d.c.status == "PENDING", or_(*claimable)))
                .values(lease_owner=self.owner, lease_until=lease_until)
            )
            mine = {
                r[0]
                for r in conn.execute(
                    select(d.c.id)
                    .where(d.c.id.in_(ids))
                    .where(d.c.lease_owner == self.owner)
                    .where(d.c.lease_until == lease_until)
                )
            }
        claimed = []
        for row in rows:
            if row.id not in mine:
                break
            claimed.append(row)
        leftover = [r for r in rows[len(claimed) :] if r.id in mine]
        if leftover:
            self._release(leftover)
        return claimed

    def _release(self, rows: list[Any]) -> None:
        d = s.deliveries
        with self.db.begin() as conn:
            conn.execute(
                update(d)
                .where(d.c.id.in_([r.id for r in rows]))
                .where(d.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )

    def _owner_dead(self, owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        return host == self.host and pid.isdigit() and not _pid_alive(int(pid))

    def _outcome(self, result: DeliveryResult, attempt: int) -> tuple[str, int | None]:
        if result.ok:
            return "SUCCEEDED", None
        if result.permanent or attempt >= self.config.max_attempts:
            return "DEAD", None
        return "PENDING", now_ms() + self.config.backoff_ms(attempt)

    def _finish(self, outcomes: list[tuple[Any, ...]], *, log_attempts: bool = True) -> None:
        """Record results of (row, status, attempts, code, error, duration, next_at), in one
        transaction, only for rows this dispatcher still holds."""
        if not outcomes:
            return
        now = now_ms()
        d = s.deliveries
        updates, inserts = [], []
        for row, status, attempts, code, error, duration, next_at in outcomes:
            updates.append(
                {
                    "b_id": row.id,
                    "status": status,
                    "attempts": attempts,
                    "last_status_code": code,
                    "last_error": error,
                    "next_attempt_at": next_at if next_at is not None else row.next_attempt_at,
                    "finished_at": None if status == "PENDING" else now,
                }
            )
            inserts.append(
                {
                    "delivery_id": row.id,
                    "attempt": attempts,
                    "at": now,
                    "status_code": code,
                    "error": error,
                    "duration_ms": duration,
                }
            )
        with self.db.begin() as conn:
            held = {
                r[0]
                for r in conn.execute(
                    select(d.c.id)
                    .where(d.c.id.in_([u["b_id"] for u in updates]))
                    .where(d.c.lease_owner == self.owner)
                )
            }
            updates = [u for u in updates if u["b_id"] in held]
            if not updates:
                return
            conn.execute(
                update(d)
                .where(d.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("status"),
                    attempts=bindparam("attempts"),
                    last_status_code=bindparam("last_status_code"),
                    last_error=bindparam("last_error"),
                    next_attempt_at=bindparam("next_attempt_at"),
                    finished_at=bindparam("finished_at"),
                    lease_owner=None,
                    lease_until=None,
                ),
                updates,
            )
            if log_attempts:
                conn.execute(s.attempts.insert(), [i for i in inserts if i["delivery_id"] in held])

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
