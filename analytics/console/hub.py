"""Live push: one poller reads the queue from the store and sends it to every connected console.

The message: ``{"type": "queue", "now", "queue": [row], "queue_total", "in_hand": [row], "in_hand_total",
"cameras": [camera]}``; a row is an alert's fields without its breakdown (see :data:`ROW_FIELDS`) plus
``priority`` (at ``now``), ``critical``, ``snapshot_url`` and ``clip_url``.

The store is the source of truth (the run that creates alerts may be another process), so the hub polls it
every ``console.poll_seconds`` (0.25 s by default) and pushes when something an operator would see changed:
an alert appeared, was updated, changed status or hold, or a camera's health changed. An action taken in
this console wakes the poller at once. Every ``REFRESH_SECONDS`` it pushes anyway, so ranks (which age with
recency) and camera frame rates stay current. Event-to-screen latency is therefore the alert stage's save plus
at most one poll interval plus the push.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from analytics.console.auth import COOKIE
from analytics.console.context import ConsoleContext
from analytics.alerts.priority import priority, recency_factor
from analytics.console.routes_alerts import STATUS_FILTERS, cameras_out

log = logging.getLogger(__name__)
router = APIRouter()
REFRESH_SECONDS = 5.0
#: Close code sent to a socket without a live session (the page goes back to the login form).
UNAUTHORISED = 4401
#: Close code sent to an account whose role may not see the queue.
FORBIDDEN = 4403


#: The fields of a queue row (the alert page fetches the full alert, with its breakdown, by id).
ROW_FIELDS = ("id", "camera_id", "kind", "rule_id", "zone_id", "line_id", "status", "verdict", "start", "end",
              "created_at", "updated_at", "member_ids", "classes", "severity", "score", "evidence", "legal_hold",
              "best_frame_seq")


class QueueView:
    """The pushed message, kept up to date incrementally: each poll reads only the alerts' versions
    (status, update time, hold, verdict), re-reads the alerts whose version changed, and re-ranks every open
    alert with its cached static factors times the recency factor at ``now`` (the same formula as
    :func:`~analytics.alerts.priority.priority`, which the alert page's breakdown shows)."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        self._rows: dict[str, tuple[tuple, dict[str, Any], float]] = {}  # id -> (version, row, static factor)
        self._lock = threading.Lock()  # the poller and a newly connected socket may both ask

    def message(self) -> dict[str, Any]:
        with self._lock:
            return self._message()

    def _message(self) -> dict[str, Any]:
        ctx = self.ctx
        versions = ctx.store.alert_versions(STATUS_FILTERS["open"])
        stale = [alert_id for alert_id, version in versions.items()
                 if alert_id not in self._rows or self._rows[alert_id][0] != version]
        config = ctx.alerts_config()
        for alert in ctx.store.get_alerts(stale):
            static = priority(alert, alert.updated_at, config)[0]  # recency factor 1 at its own update time
            row = {name: getattr(alert, name) for name in ROW_FIELDS}
            row["member_ids"], row["classes"] = list(alert.member_ids), list(alert.classes)
            version = (alert.status, alert.updated_at, alert.legal_hold, alert.verdict)
            self._rows[alert.id] = (version, row, static)
        for alert_id in set(self._rows) - set(versions):
            del self._rows[alert_id]
        now, half_life = ctx.clock(), config.recency_half_life
        crit = ctx.config.console.critical_priority
        files = ctx.store.evidence_of(self._rows)
        queue, in_hand = [], []
        for alert_id, (_version, row, static) in self._rows.items():
            value = static * recency_factor(row["updated_at"], now, half_life)
            linked = files.get(alert_id, {})
            base = f"/api/alerts/{alert_id}"
            out = {**row, "priority": value, "critical": value >= crit,
                   "snapshot_url": f"{base}/snapshot.jpg" if "snapshot" in linked else None,
                   "clip_url": f"{base}/clip.mp4" if "clip" in linked else None}
            (queue if row["status"] in STATUS_FILTERS["queue"] else in_hand).append(out)
        for rows in (queue, in_hand):
            rows.sort(key=lambda a: (-a["priority"], -a["updated_at"], a["id"]))
        limit = ctx.config.console.queue_limit
        return {"type": "queue", "now": now, "queue": queue[:limit], "queue_total": len(queue),
                "in_hand": in_hand[:limit], "in_hand_total": len(in_hand), "cameras": cameras_out(ctx)}


def signature(message: dict[str, Any]) -> str:
    """What must change for a push: alert identity, status, update time, hold; camera health and errors."""
    alerts = [(a["id"], a["status"], a["updated_at"], a["legal_hold"], a["verdict"], a["snapshot_url"])
              for a in (*message["queue"], *message["in_hand"])]
    cams = [(c["id"], c["health"], c["error"]) for c in message["cameras"]]
    return json.dumps([alerts, cams])


class Hub:
    """The connected consoles and the poller that feeds them."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        self.sockets: set[WebSocket] = set()
        self.latest: dict[str, Any] | None = None
        self.view = QueueView(ctx)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.ctx.changed = asyncio.Event()
        self._task = asyncio.create_task(self._poll(), name="console-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        last_sig, last_push = None, 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await anyio.to_thread.run_sync(self.view.message)
                sig = signature(message)
                self.latest = message
                if sig != last_sig or loop.time() - last_push >= REFRESH_SECONDS:
                    await self._broadcast(message)
                    last_sig, last_push = sig, loop.time()
            except Exception:  # noqa: BLE001 - a store hiccup must not end live updates; retried next poll
                log.exception("console hub: reading the queue failed")
            assert self.ctx.changed is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.ctx.changed.wait(), self.ctx.config.console.poll_seconds)
            self.ctx.changed.clear()

    async def _broadcast(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for ws in list(self.sockets):
            try:
                await ws.send_text(text)
            except Exception:  # noqa: BLE001 - a gone browser is dropped, the others still get it
                self.sockets.discard(ws)


@router.websocket("/ws")
async def live(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    ctx: ConsoleContext = ws.app.state.ctx
    user = await anyio.to_thread.run_sync(ctx.accounts.session_user, ws.cookies.get(COOKIE))
    await ws.accept()
    if user is None:
        await ws.close(code=UNAUTHORISED, reason="not logged in")
        return
    if not user.can("operator"):  # a police relay account sees its granted cameras, not the centre's alerts
        await ws.close(code=FORBIDDEN, reason="the alert queue is for the centre's staff")
        return
    hub.sockets.add(ws)
    try:
        message = hub.latest or await anyio.to_thread.run_sync(hub.view.message)
        await ws.send_text(json.dumps(message))
        while True:
            await ws.receive_text()  # the console sends nothing we need; this waits for the close
    except WebSocketDisconnect:
        pass
    finally:
        hub.sockets.discard(ws)
