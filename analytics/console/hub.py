"""Live push: one poller reads the queue from the store and sends it to every connected console.

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
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from analytics.console.auth import COOKIE
from analytics.console.context import ConsoleContext
from analytics.console.routes_alerts import STATUS_FILTERS, cameras_out, ranked

log = logging.getLogger(__name__)
router = APIRouter()
REFRESH_SECONDS = 5.0
#: Close code sent to a socket without a live session (the page goes back to the login form).
UNAUTHORISED = 4401


def snapshot(ctx: ConsoleContext) -> dict[str, Any]:
    """The message pushed to consoles: ranked queue, alerts in hand, camera health."""
    return {"type": "queue", "now": ctx.clock(), "queue": ranked(ctx, STATUS_FILTERS["queue"]),
            "in_hand": ranked(ctx, STATUS_FILTERS["in_hand"]), "cameras": cameras_out(ctx)}


def signature(message: dict[str, Any]) -> str:
    """What must change for a push: alert identity, status, update time, hold; camera health and errors."""
    alerts = [(a["id"], a["status"], a["updated_at"], a["legal_hold"], a["verdict"])
              for a in (*message["queue"], *message["in_hand"])]
    cams = [(c["id"], c["health"], c["error"]) for c in message["cameras"]]
    return json.dumps([alerts, cams])


class Hub:
    """The connected consoles and the poller that feeds them."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.ctx = ctx
        self.sockets: set[WebSocket] = set()
        self.latest: dict[str, Any] | None = None
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
                message = await anyio.to_thread.run_sync(snapshot, self.ctx)
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
    hub.sockets.add(ws)
    try:
        message = hub.latest or await anyio.to_thread.run_sync(snapshot, ctx)
        await ws.send_text(json.dumps(message))
        while True:
            await ws.receive_text()  # the console sends nothing we need; this waits for the close
    except WebSocketDisconnect:
        pass
    finally:
        hub.sockets.discard(ws)
