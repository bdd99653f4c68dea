"""Load on the alert stage: 100 event records per second for a minute, into the manager and a SQLite store.

    .venv/bin/python benchmarks/alerts_load.py [--rate 100] [--seconds 60]

Events are paced in real time, in batches of ``rate / 10`` every 0.1 s (a pipeline hands events over frame
by frame). Each incident is an event with an ``open``
record, ``updated`` records and a ``closed`` record over a few seconds, and incidents at one place are
spaced beyond the merge gap and cooldown, so each incident must become exactly one alert. Places: 75
cameras x 6 zones x 4 kinds. Measures the
latency of each batch from hand-over to every change saved (p50 / p95 / p99 / max), then checks the queue:
one alert per incident, every record's event in its incident's alert, ranked by priority.

The console runs meanwhile as its own process (``analytics serve`` on loopback, over the same SQLite file), as
in a centre where the console and the pipeline are separate services. A logged-in operator's WebSocket
records when each new alert first reaches the screen (event-to-screen latency: the hand-over of the batch
that created it to the push that shows it), and a second client polls ``GET /api/alerts`` every 0.2 s to
measure how responsive the console stays (request latency). At the end the console's queue must hold
exactly the store's open alerts, ranked. ``--no-console`` measures the alert stage alone.

Writes benchmarks/results/alerts_load.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.alerts.config import AlertsConfig  # noqa: E402
from analytics.alerts.store import AlertStore  # noqa: E402
from analytics.pipeline.alerting import AlertStage  # noqa: E402
from analytics.rules.base import Event  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
KINDS = ("gathering", "loitering", "intrusion", "congestion")
#: 75 cameras (the centre the project models on) x 6 zones x 4 kinds: where incidents happen.
PLACES = [(f"cam{c:02d}", f"zone{z}", kind) for c in range(75) for z in range(6) for kind in KINDS]


def incident_records(rng: random.Random, n: int, place: tuple[str, str, str], t0: float) -> list[tuple[float, Event]]:
    """(time, record) of one incident: open, a few updates, closed, over 3-8 s of event time."""
    camera, zone, kind = place
    members = tuple(sorted(rng.sample(range(1, 500), rng.randint(1, 6))))
    length = rng.uniform(3.0, 8.0)
    steps = rng.randint(3, 10)
    out = []
    for i in range(steps + 1):
        t = t0 + length * i / steps
        status = "open" if i == 0 else "closed" if i == steps else "updated"
        out.append((t, Event(f"{camera}:{kind}:{n}", kind, kind, camera, status, t0, t, members,
                             ("person",) * len(members), min(1.0, 0.3 + 0.1 * i), {"size": len(members)}, i, zone)))
    return out


def schedule(rate: float, seconds: float, seed: int = 0) -> tuple[list[tuple[float, Event]], dict[str, str]]:
    """Records sorted by time over ``seconds``, about ``rate`` per second; and event id -> incident key.

    Incidents start at a steady pace (an incident has 7.5 records on average), each at a random place that is
    free then: its previous incident ended more than 100 s (beyond merge gap and cooldown) earlier.
    """
    rng = random.Random(seed)
    per_second = rate / 7.5
    records, incident_of, next_free = [], {}, dict.fromkeys(PLACES, 0.0)
    n = 0
    while (t0 := n / per_second) < seconds:
        place = rng.choice(PLACES)
        while next_free[place] > t0:
            place = rng.choice(PLACES)
        recs = incident_records(rng, n, place, t0)
        records += [r for r in recs if r[0] < seconds]
        incident_of[recs[0][1].id] = "/".join(place) + f"/{n}"
        next_free[place] = recs[-1][0] + 100.0
        n += 1
    records.sort(key=lambda r: r[0])
    return records, incident_of


def percentiles(seconds: list[float]) -> dict[str, float | int | None]:
    """p50 / p95 / p99 / max / mean in milliseconds, and the count."""
    if not seconds:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ms = sorted(x * 1000 for x in seconds)
    pct = {f"p{q}": round(ms[min(len(ms) - 1, int(len(ms) * q / 100))], 1) for q in (50, 95, 99)}
    return {"n": len(ms), **pct, "max": round(ms[-1], 1), "mean": round(statistics.mean(ms), 1)}


class Console:
    """``analytics serve`` in its own process over the benchmark's store, an operator's WebSocket that notes
    when each alert id first appears, and a client polling the queue over HTTP."""

    PASSWORD = "load-test-operator"

    def __init__(self, tmp: Path, store: AlertStore) -> None:
        from analytics.console.accounts import Accounts

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cameras = "\n".join(f"  - {{id: cam{c:02d}, source: {tmp}/cam{c:02d}.mp4}}" for c in range(75))
        config = tmp / "load.yaml"
        config.write_text(f"output: {{dir: {tmp}}}\ncameras:\n{cameras}\n"
                          f"alerts: {{store: 'sqlite:///{tmp}/alerts.db'}}\nconsole: {{queue_limit: 2000}}\n")
        Accounts(store).create_user("operator1", self.PASSWORD, "operator", by="benchmark")
        env = {**os.environ, "ANALYTICS_ADMIN_PASSWORD": "load-test-admin-pw"}
        self.proc = subprocess.Popen([sys.executable, "-m", "analytics.cli", "serve", str(config), "--port",
                                      str(self.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=open(tmp / "console.log", "w"))  # noqa: SIM115 - lives with proc
        self.base = f"http://127.0.0.1:{self.port}"
        self.first_seen: dict[str, float] = {}
        self.http_latency: list[float] = []
        self.http_errors = 0
        self.messages = 0
        self.last: dict = {}
        self._stop = threading.Event()

    def start(self) -> None:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/api/me", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the console did not start; see console.log in the temporary folder")
            time.sleep(0.2)
        r = httpx.post(f"{self.base}/api/login", json={"username": "operator1", "password": self.PASSWORD})
        r.raise_for_status()
        self.cookie = f"analytics_session={r.cookies['analytics_session']}"
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._poll, daemon=True)]
        for t in self._threads:
            t.start()

    def _watch(self) -> None:
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{self.port}/ws", additional_headers={"Cookie": self.cookie},
                     max_size=None) as ws:
            while not self._stop.is_set():
                try:
                    text = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                now = time.perf_counter()
                message = json.loads(text)
                self.messages += 1
                self.last = message
                for alert in (*message["queue"], *message["in_hand"]):
                    self.first_seen.setdefault(alert["id"], now)

    def _poll(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, headers={"Cookie": self.cookie}, timeout=10) as client:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    client.get("/api/alerts", params={"status": "queue", "limit": 50}).raise_for_status()
                    self.http_latency.append(time.perf_counter() - t0)
                except httpx.HTTPError:
                    self.http_errors += 1
                self._stop.wait(0.2)

    def final_queue(self) -> list[dict]:
        import httpx

        r = httpx.get(f"{self.base}/api/alerts", params={"status": "queue", "limit": 5000},
                      headers={"Cookie": self.cookie}, timeout=30)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        self._stop.set()
        for t in getattr(self, "_threads", ()):
            t.join(timeout=5)
        self.proc.terminate()
        self.proc.wait(timeout=20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--no-console", action="store_true", help="the alert stage alone")
    args = p.parse_args()
    records, incident_of = schedule(args.rate, args.seconds)
    latencies = []
    created_at: dict[str, float] = {}  # alert id -> hand-over time of the batch that created it
    console = None
    with tempfile.TemporaryDirectory() as tmp, AlertStore.open(f"sqlite:///{tmp}/alerts.db") as store:
        if not args.no_console:
            console = Console(Path(tmp), store)
            console.start()
        try:
            stage = AlertStage(AlertsConfig(), store, [])
            step = 0.1
            slots: dict[int, list[Event]] = {}
            for t, record in records:
                slots.setdefault(int(t // step), []).append(record)
            start = time.perf_counter()
            for k in sorted(slots):
                due = start + k * step
                while (left := due - time.perf_counter()) > 0:
                    time.sleep(min(0.005, left))
                t0 = time.perf_counter()
                for change in stage.process(slots[k]):
                    if change.change == "created":
                        created_at[change.alert.id] = t0
                latencies.append(time.perf_counter() - t0)
            wall = time.perf_counter() - start
            if console is not None:
                time.sleep(2.0)  # let the last changes reach the screen
            alerts = store.list_alerts()
            queue = stage.manager.queue(time.time())
            console_queue = console.final_queue() if console is not None else None
        finally:
            if console is not None:
                console.stop()
    seen_events = {r.id for _, r in records}
    owner = {e: a.id for a in alerts for e in a.event_ids}
    checks = {
        "one_alert_per_incident": len(alerts) == len(seen_events),
        "every_event_in_one_alert": all(e in owner for e in seen_events) and len(owner) == len(seen_events),
        "queue_ranked_by_priority": all(a.priority >= b.priority for a, b in zip(queue, queue[1:])),
        "queue_holds_every_open_alert": len(queue) == len(alerts),
    }
    result = {"date": time.strftime("%Y-%m-%d"), "rate_per_s": args.rate, "seconds": args.seconds,
              "records": len(records), "incidents": len(seen_events), "batches": len(latencies),
              "wall_seconds": round(wall, 1), "batch_latency_ms": percentiles(latencies),
              "alerts": len(alerts), "checks": checks,
              "command": ".venv/bin/python benchmarks/alerts_load.py"}
    if console is not None:
        shown = [console.first_seen[a] - t for a, t in created_at.items() if a in console.first_seen]
        checks["console_queue_is_the_store_open_alerts"] = {a["id"] for a in console_queue} == {
            a.id for a in alerts if a.status in ("new", "seen")}
        checks["console_queue_ranked"] = all(a["priority"] >= b["priority"]
                                             for a, b in zip(console_queue, console_queue[1:]))
        checks["console_pushed_total_is_right"] = console.last.get("queue_total") == len(alerts)
        checks["console_http_no_errors"] = console.http_errors == 0
        result["console"] = {
            "event_to_screen_ms": percentiles(shown),
            "alerts_shown": len(shown), "alerts_created": len(created_at),
            "http_queue_latency_ms": percentiles(console.http_latency), "http_errors": console.http_errors,
            "websocket_messages": console.messages}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alerts_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "alerts_load.md").write_text(markdown(result))
    print(markdown(result))
    if not all(checks.values()):
        sys.exit(f"queue checks failed: {checks}")


def markdown(r: dict) -> str:
    lat = r["batch_latency_ms"]
    lines = console_markdown(r["console"]) if "console" in r else [
        "The console was not run (--no-console).", ""]
    return "\n".join([
        f"# Alert stage under load, {r['date']}", "",
        f"Command: `{r['command']}`: {r['records']} event records at {r['rate_per_s']:.0f}/s for {r['seconds']:.0f} s "
        f"(real time, {r['batches']} batches of 0.1 s), {r['incidents']} incidents over 75 cameras, into the "
        "alert manager and a SQLite store (WAL, synchronous FULL).", "",
        "| batch latency (hand-over to saved) | p50 | p95 | p99 | max | mean |", "|---|---|---|---|---|---|",
        f"| ms | {lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} | {lat['mean']} |", "",
        f"Alerts: {r['alerts']} for {r['incidents']} incidents. Checks: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["checks"].items()) + ".", "", *lines])


def console_markdown(c: dict) -> list[str]:
    rows = [("event to screen (batch hand-over to the WebSocket push showing the new alert)",
             c["event_to_screen_ms"]), ("GET /api/alerts?status=queue&limit=50 every 0.2 s",
                                        c["http_queue_latency_ms"])]
    return [
        "Console: `analytics serve` in its own process over the same SQLite file; one operator's WebSocket and "
        "one polling client on loopback.", "",
        "| console latency, ms | n | p50 | p95 | p99 | max | mean |", "|---|---|---|---|---|---|---|",
        *(f"| {name} | {v['n']} | {v['p50']} | {v['p95']} | {v['p99']} | {v['max']} | {v['mean']} |"
          for name, v in rows), "",
        f"{c['alerts_shown']} of {c['alerts_created']} new alerts were seen on the operator's screen "
        f"({c['websocket_messages']} pushes; here the console pushes the whole queue, console.queue_limit 2000, "
        f"the heaviest case: by default it pushes the 100 highest ranked); {c['http_errors']} HTTP errors.", ""]


if __name__ == "__main__":
    main()
