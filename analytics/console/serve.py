"""Starting the console: its context from a run config, the first admin, and uvicorn (blocking or in a
thread beside a run)."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path

from analytics.alerts.store import AlertStore
from analytics.config import RunConfig
from analytics.console.accounts import Accounts
from analytics.console.context import ConsoleContext
from analytics.pipeline.alert_side import evidence_dir, live_dir, recordings_dir, signing_key_path

log = logging.getLogger(__name__)
#: Environment variable giving the first admin's password (otherwise one is generated and printed once).
ADMIN_PASSWORD_ENV = "ANALYTICS_ADMIN_PASSWORD"


def store_url(cfg: RunConfig, out_dir: Path) -> str:
    """The alert store of a run: the config's URL, else ``sqlite:///<out_dir>/alerts.db``."""
    return cfg.alerts.store or f"sqlite:///{(out_dir / 'alerts.db').resolve()}"


def make_context(cfg: RunConfig, store: AlertStore, out_dir: Path) -> ConsoleContext:
    return ConsoleContext(config=cfg, store=store, accounts=Accounts(store), live_dir=live_dir(cfg, out_dir),
                          evidence_dir=evidence_dir(cfg, out_dir), recordings_dir=recordings_dir(cfg, out_dir),
                          exports_dir=out_dir / "exports", signing_key=signing_key_path(cfg, out_dir))


def bootstrap_admin(accounts: Accounts) -> None:
    """On a store with no user at all, create ``admin`` (password from $ANALYTICS_ADMIN_PASSWORD, or generated
    and printed once to stderr: it is stored only as a hash)."""
    if accounts.count():
        return
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    generated = not password
    password = password or secrets.token_urlsafe(12)
    accounts.create_user("admin", password, "admin", by="system")
    if generated:
        print(f"\nfirst start: created user 'admin' with password {password!r}; it is shown only now. Log in and "
              "create the operators' accounts (Admin tab).\n", file=sys.stderr, flush=True)
    else:
        log.info("first start: created user 'admin' with the password from $%s", ADMIN_PASSWORD_ENV)


class ConsoleServer:
    """uvicorn serving the console app, blocking (:meth:`run`) or in a daemon thread (:meth:`start`)."""

    def __init__(self, ctx: ConsoleContext, *, host: str, port: int) -> None:
        import uvicorn

        from analytics.console.app import create_app

        self.url = f"http://{host}:{port}/"
        config = uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning", access_log=False,
                                ws_ping_interval=20.0)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        log.info("operator console at %s", self.url)
        self._server.run()

    def start(self, *, timeout: float = 30.0) -> None:
        """Serve in a thread; returns once listening (raises RuntimeError if it could not start)."""
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the console could not start on {self.url} (port in use?)")
            time.sleep(0.05)
        log.info("operator console at %s", self.url)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
