"""Load on the alert stage: 100 event records per second for a minute, into the manager and a SQLite store.

    .venv/bin/python benchmarks/alerts_load.py [--rate 100] [--seconds 60]

Events are paced in real time, in batches of ``rate / 10`` every 0.1 s (a pipeline hands events over frame
by frame). Each incident is an event with an ``open``
record, ``updated`` records and a ``closed`` record over a few seconds, and incidents at one place are
spaced beyond the merge gap and cooldown, so each incident must become exactly one alert. Places: 75
cameras x 6 zones x 4 kinds. Measures the
latency of each batch from hand-over to every change saved (p50 / p95 / p99 / max), then checks the queue:
one alert per incident, every record's event in its incident's alert, ranked by priority.
Writes benchmarks/results/alerts_load.{json,md}. (The console part of the issue's load test is not built.)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=60.0)
    args = p.parse_args()
    records, incident_of = schedule(args.rate, args.seconds)
    latencies = []
    with tempfile.TemporaryDirectory() as tmp, AlertStore.open(f"sqlite:///{tmp}/alerts.db") as store:
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
            stage.process(slots[k])
            latencies.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        alerts = store.list_alerts()
        queue = stage.manager.queue(time.time())
    seen_events = {r.id for _, r in records}
    owner = {e: a.id for a in alerts for e in a.event_ids}
    checks = {
        "one_alert_per_incident": len(alerts) == len(seen_events),
        "every_event_in_one_alert": all(e in owner for e in seen_events) and len(owner) == len(seen_events),
        "queue_ranked_by_priority": all(a.priority >= b.priority for a, b in zip(queue, queue[1:])),
        "queue_holds_every_open_alert": len(queue) == len(alerts),
    }
    ms = sorted(x * 1000 for x in latencies)
    pct = {f"p{q}": round(ms[min(len(ms) - 1, int(len(ms) * q / 100))], 2) for q in (50, 95, 99)}
    result = {"date": time.strftime("%Y-%m-%d"), "rate_per_s": args.rate, "seconds": args.seconds,
              "records": len(records), "incidents": len(seen_events), "batches": len(latencies),
              "wall_seconds": round(wall, 1), "batch_latency_ms": {**pct, "max": round(ms[-1], 2),
                                                                   "mean": round(statistics.mean(ms), 2)},
              "alerts": len(alerts), "checks": checks,
              "command": ".venv/bin/python benchmarks/alerts_load.py"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "alerts_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "alerts_load.md").write_text(markdown(result))
    print(markdown(result))
    if not all(checks.values()):
        sys.exit(f"queue checks failed: {checks}")


def markdown(r: dict) -> str:
    lat = r["batch_latency_ms"]
    return "\n".join([
        f"# Alert stage under load, {r['date']}", "",
        f"Command: `{r['command']}`: {r['records']} event records at {r['rate_per_s']:.0f}/s for {r['seconds']:.0f} s "
        f"(real time, {r['batches']} batches of 0.1 s), {r['incidents']} incidents over 75 cameras, into the "
        "alert manager and a SQLite store (WAL, synchronous FULL).", "",
        "| batch latency (hand-over to saved) | p50 | p95 | p99 | max | mean |", "|---|---|---|---|---|---|",
        f"| ms | {lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} | {lat['mean']} |", "",
        f"Alerts: {r['alerts']} for {r['incidents']} incidents. Checks: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["checks"].items()) + ".", "",
        "The console's share of the issue's load test (WebSocket push, responsiveness) is not built yet.", ""])


if __name__ == "__main__":
    main()
