"""The operator console in a real browser (Debian's Chromium driven by Playwright) over a real pipeline.

The console runs as ``analytics serve``; an operator logs in, sees an empty queue, then ``analytics run``
starts on PETS09-S2L1 (detector, tracker, rules, alert stage, SQLite store) as a separate process. The test
watches the first alert arrive on the operator's screen, pushed over the WebSocket, acknowledges it with the
keyboard and sees it leave the queue for the "in hand" list; the camera's live frame shows on the video
wall. Then the operator closes it as a false alarm (keyboard), and a supervisor, in another browser
session, sees the rule's precision at 0 %, reviews the verdict to a true alert on the alert page, and sees
the precision become 100 %.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CONFIG = ROOT / "configs" / "pets09.yaml"
ADMIN_PW = "browser-test-admin"
USERS = {"op1": ("operator-browser-1", "operator"), "sup1": ("supervisor-browser-1", "supervisor")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def console(tmp_path: Path):
    """``analytics serve`` over an empty output folder, with an operator and a supervisor created by the admin."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install.sh installs Debian's chromium for the browser tests")
    port = _free_port()
    out = tmp_path / "run"
    env = {**os.environ, "ANALYTICS_ADMIN_PASSWORD": ADMIN_PW}
    log = open(tmp_path / "console.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "analytics.cli", "serve", str(CONFIG), "--out", str(out),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{base}/api/me", timeout=1).status_code == 401
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "the console to listen")
        with httpx.Client(base_url=base) as admin:
            admin.post("/api/login", json={"username": "admin", "password": ADMIN_PW}).raise_for_status()
            for name, (password, role) in USERS.items():
                admin.post("/api/users", json={"username": name, "password": password, "role": role}
                           ).raise_for_status()
        yield base, out
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _login(browser, base: str, user: str):
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(base)
    page.get_by_test_id("login-username").fill(user)
    page.get_by_test_id("login-password").fill(USERS[user][0])
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("ws-state").filter(has_text="live").wait_for(timeout=15_000)
    assert page.get_by_test_id("user-role").inner_text().strip().lower() == USERS[user][1]
    return page, errors


def test_operator_sees_an_alert_arrive_live_and_acknowledges_it_with_the_keyboard(console, browser, tmp_path):
    base, out = console
    page, errors = _login(browser, base, "op1")
    queue = page.get_by_test_id("queue")
    assert queue.get_by_test_id("queue-row").count() == 0  # nothing yet: the run has not started

    run = subprocess.Popen([sys.executable, "-m", "analytics.cli", "run", str(CONFIG), "--out", str(out),
                            "--no-progress"], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "run.log", "w"))
    try:
        first = queue.get_by_test_id("queue-row").first
        first.wait_for(timeout=240_000)  # model load, then the first incident on the footage
        seen_at = time.time()
        alert_id = first.get_attribute("data-alert-id")
        with httpx.Client(base_url=base) as api:
            api.post("/api/login", json={"username": "sup1", "password": USERS["sup1"][0]}).raise_for_status()
            created = api.get(f"/api/alerts/{alert_id}").json()["created_at"]
        assert seen_at - created < 30  # it arrived while we watched, not before the login

        tile = page.locator("[data-testid=camera-tile][data-camera-id=pets09] img")
        wait_for(lambda: tile.evaluate("img => img.complete && img.naturalWidth") > 0, 30, "a live frame")

        page.locator(f"[data-testid=queue-row][data-alert-id='{alert_id}']").click()
        page.keyboard.press("Escape")  # a click may open the alert page; the queue keeps the selection
        selected = page.locator("[data-testid=queue-row][aria-selected=true]")
        assert selected.get_attribute("data-alert-id") == alert_id
        page.keyboard.press("a")
        in_hand = page.locator(f"[data-testid=in-hand-row][data-alert-id='{alert_id}']")
        in_hand.wait_for(timeout=10_000)
        assert page.locator(f"[data-testid=queue-row][data-alert-id='{alert_id}']").count() == 0
        with httpx.Client(base_url=base) as api:
            api.post("/api/login", json={"username": "sup1", "password": USERS["sup1"][0]}).raise_for_status()
            steps = api.get(f"/api/alerts/{alert_id}").json()["transitions"]
            assert [(s["status"], s["user"]) for s in steps][-1] == ("acknowledged", "op1")

            # the operator dismisses it as a false alarm with the keyboard
            in_hand.click()
            page.keyboard.press("Escape")
            assert page.locator("[data-testid=in-hand-row][aria-selected=true]").get_attribute(
                "data-alert-id") == alert_id
            page.keyboard.press("f")
            wait_for(lambda: api.get(f"/api/alerts/{alert_id}").json()["status"] == "closed", 10, "closed")
            closed = api.get(f"/api/alerts/{alert_id}").json()
            assert closed["verdict"] == "false_alarm"

            # its evidence, written by the run: a snapshot and a clip, served to the console
            wait_for(lambda: api.get(f"/api/alerts/{alert_id}").json()["clip_url"] is not None, 60, "the clip")
            linked = api.get(f"/api/alerts/{alert_id}").json()
            snapshot, clip = api.get(linked["snapshot_url"]), api.get(linked["clip_url"])
            assert snapshot.headers["content-type"] == "image/jpeg" and snapshot.content[:2] == b"\xff\xd8"
            assert clip.headers["content-type"] == "video/mp4" and clip.content[4:8] == b"ftyp"
        rule = closed["rule_id"]
    finally:
        run.terminate()
        run.wait(timeout=60)
    assert errors == []

    sup, sup_errors = _login(browser, base, "sup1")
    sup.get_by_test_id("view-audit").click()
    row = sup.locator(f"[data-testid=precision-row][data-key='{rule}'] [data-testid=precision-value]")
    wait_for(lambda: row.count() == 1 and row.get_attribute("data-value") not in (None, ""), 20, "precision")
    assert float(row.get_attribute("data-value")) == 0.0
    sup.locator(f"[data-testid=closed-row][data-alert-id='{alert_id}'] button").click()
    page_ = sup.get_by_test_id("alert-page")
    page_.wait_for()
    page_.locator("[data-review=true_alert]").click()
    wait_for(lambda: page_.get_by_test_id("alert-status").inner_text().lower().find("true") >= 0
             or "true" in (sup.locator(f"[data-testid=closed-row][data-alert-id='{alert_id}']").inner_text()
                           .lower()), 10, "the review to show")
    sup.keyboard.press("Escape")
    wait_for(lambda: row.count() == 1 and float(row.get_attribute("data-value") or -1) == 1.0, 20,
             "precision to become 100 %")
    assert sup_errors == []
