"""The console's HTTP and WebSocket API against a real SQLite store: every endpoint, bad input (4xx with a
message, never a 500) and roles (401 without a session, 403 below the needed role)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from analytics.console.app import create_app
from analytics.console.auth import COOKIE, MAX_FAILURES
from console_support import PASSWORDS, Clock, client_as, event, make_context, seed

JPEG = b"\xff\xd8\xff\xe0fake-but-served-as-is\xff\xd9"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock):
    context = make_context(tmp_path, clock)
    yield context
    context.store.close()


@pytest.fixture
def app(ctx):
    return create_app(ctx)


@pytest.fixture
def alerts(ctx) -> list[str]:
    """Three alerts: a big group on the junction (highest rank), a smaller one, and a desk loitering."""
    ids = seed(ctx, [event(1, size=9, score=0.95), event(2, start=500.0, size=3, score=0.4),
                     event(3, camera="indoor-desk", kind="loitering", rule="at-table", zone="table", score=0.6)])
    assert len(ids) == 3
    return ids


# -- login and sessions ------------------------------------------------------------------------------------------

def test_login_sets_a_strict_httponly_cookie_and_me_answers(app) -> None:
    client = TestClient(app)
    assert client.get("/api/me").status_code == 401
    r = client.post("/api/login", json={"username": "ops", "password": PASSWORDS["ops"]})
    assert r.status_code == 200 and r.json() == {"username": "ops", "role": "operator"}
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/me").json() == {"username": "ops", "role": "operator"}
    assert client.post("/api/logout").status_code == 204
    assert client.get("/api/me").status_code == 401


def test_wrong_password_is_401_and_audited_then_throttled(app, ctx) -> None:
    client = TestClient(app)
    for _ in range(MAX_FAILURES):
        r = client.post("/api/login", json={"username": "ops", "password": "wrong-password"})
        assert r.status_code == 401 and "wrong user name or password" in r.json()["detail"]
    r = client.post("/api/login", json={"username": "ops", "password": PASSWORDS["ops"]})
    assert r.status_code == 429 and "too many failed logins" in r.json()["detail"]
    assert len(ctx.store.audit_entries(action="login.failed")) == MAX_FAILURES


def test_session_expires(app, clock) -> None:
    client = client_as(app, "ops")
    clock.now += 11 * 3600
    assert client.get("/api/me").status_code == 200
    clock.now += 2 * 3600  # past the 12 h session
    assert client.get("/api/me").status_code == 401


def test_a_stolen_database_gives_no_session(app, ctx) -> None:
    client = client_as(app, "ops")
    token = client.cookies[COOKIE]
    with ctx.store.reading() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM sessions")]
    assert token not in stored and len(stored) == 1
    forged = TestClient(app, cookies={COOKIE: stored[0]})
    assert forged.get("/api/me").status_code == 401


# -- roles: every endpoint against every role --------------------------------------------------------------------

ENDPOINTS = [  # method, path, body, the lowest role allowed
    ("GET", "/api/settings", None, "operator"),
    ("GET", "/api/cameras", None, "operator"),
    ("GET", "/api/authorities", None, "operator"),
    ("GET", "/api/alerts?status=all", None, "operator"),
    ("GET", "/api/alerts/{alert}", None, "operator"),
    ("POST", "/api/alerts/{alert}/seen", {}, "operator"),
    ("POST", "/api/alerts/{alert}/review", {"verdict": "true_alert"}, "supervisor"),
    ("POST", "/api/alerts/{alert}/legal-hold", {"hold": True}, "supervisor"),
    ("GET", "/api/audit/precision?by=rule", None, "supervisor"),
    ("GET", "/api/audit/ack-times", None, "supervisor"),
    ("GET", "/api/audit/operator-load", None, "supervisor"),
    ("GET", "/api/audit/plots/precision_by_rule.png", None, "supervisor"),
    ("GET", "/api/audit/export.csv", None, "supervisor"),
    ("GET", "/api/audit/log", None, "supervisor"),
    ("GET", "/api/rules", None, "supervisor"),
    ("PUT", "/api/rules/pets09-junction/group", {"min_score": 0.3, "cooldown": 60, "merge_gap": 30}, "admin"),
    ("GET", "/api/users", None, "admin"),
    ("POST", "/api/users", {"username": "new-op", "password": "new-operator-pw", "role": "operator"}, "admin"),
    ("PATCH", "/api/users/ops", {"disabled": False}, "admin"),
]
RANK = {"operator": 0, "supervisor": 1, "admin": 2}
USER_OF = {"operator": "ops", "supervisor": "sup", "admin": "adm"}


@pytest.mark.parametrize("method,path,body,lowest", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_each_role_against_each_endpoint(app, alerts, method, path, body, lowest) -> None:
    url = path.format(alert=alerts[0])
    assert TestClient(app).request(method, url, json=body).status_code == 401
    for role, user in USER_OF.items():
        r = client_as(app, user).request(method, url, json=body)
        if RANK[role] < RANK[lowest]:
            assert r.status_code == 403, (role, r.text)
            assert lowest in r.json()["detail"]
        else:
            assert r.status_code in (200, 201, 409), (role, r.status_code, r.text)  # 409: review of an open alert


# -- the ranked queue and the life cycle ---------------------------------------------------------------------------

def test_queue_is_ranked_by_priority_across_cameras(app, alerts) -> None:
    rows = client_as(app, "ops").get("/api/alerts?status=queue").json()
    assert [r["id"] for r in rows][0] == alerts[0]
    assert [r["priority"] for r in rows] == sorted((r["priority"] for r in rows), reverse=True)
    assert {r["camera_id"] for r in rows} == {"pets09-junction", "indoor-desk"}
    assert all(set(r["breakdown"]) and 0 <= r["priority"] <= 1 for r in rows)


def test_acknowledge_moves_an_alert_from_the_queue_to_in_hand_with_who_and_when(app, ctx, clock, alerts) -> None:
    client = client_as(app, "ops")
    r = client.post(f"/api/alerts/{alerts[0]}/acknowledge", json={"comment": "watching"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert alerts[0] not in [a["id"] for a in client.get("/api/alerts?status=queue").json()]
    assert alerts[0] in [a["id"] for a in client.get("/api/alerts?status=in_hand").json()]
    steps = client.get(f"/api/alerts/{alerts[0]}").json()["transitions"]
    assert [(s["status"], s["user"], s["at"]) for s in steps] == [("acknowledged", "ops", clock.now)]
    assert ctx.store.audit_entries(target=alerts[0], action="alert.transition")[0].user == "ops"


def test_escalate_and_close_follow_the_life_cycle(app, ctx, alerts) -> None:
    client = client_as(app, "ops")
    r = client.post(f"/api/alerts/{alerts[0]}/escalate", json={"authority": "nowhere"})
    assert r.status_code == 409 and "unknown authority 'nowhere'" in r.json()["detail"]
    r = client.post(f"/api/alerts/{alerts[0]}/escalate", json={"authority": "police-municipale", "comment": "P-12"})
    assert r.status_code == 200 and r.json()["status"] == "escalated"
    r = client.post(f"/api/alerts/{alerts[0]}/acknowledge", json={})
    assert r.status_code == 409 and "cannot go from 'escalated' to 'acknowledged'" in r.json()["detail"]
    r = client.post(f"/api/alerts/{alerts[0]}/close", json={"verdict": "true_alert"})
    assert r.json()["status"] == "closed" and r.json()["verdict"] == "true_alert"
    assert [t.status for t in ctx.store.transitions(alerts[0])] == ["escalated", "closed"]
    assert ctx.store.transitions(alerts[0])[0].authority == "police-municipale"


def test_seen_is_idempotent(app, alerts) -> None:
    client = client_as(app, "ops")
    assert client.post(f"/api/alerts/{alerts[1]}/seen").json()["status"] == "seen"
    assert client.post(f"/api/alerts/{alerts[1]}/seen").json()["status"] == "seen"
    assert len(client.get(f"/api/alerts/{alerts[1]}").json()["transitions"]) == 1


BAD_REQUESTS = [  # method, path, body or raw text, status, words in the message
    ("POST", "/api/alerts/{alert}/close", {}, 422, "verdict"),
    ("POST", "/api/alerts/{alert}/close", {"verdict": "maybe"}, 422, "verdict"),
    ("POST", "/api/alerts/{alert}/close", {"verdict": "true_alert", "extra": 1}, 422, "extra"),
    ("POST", "/api/alerts/{alert}/escalate", {"comment": "no authority"}, 422, "authority"),
    ("POST", "/api/alerts/{alert}/acknowledge", "not json", 422, "invalid request"),
    ("POST", "/api/alerts/{alert}/acknowledge", {"comment": "x" * 3000}, 422, "comment"),
    ("POST", "/api/alerts/nope:gathering:9/acknowledge", {}, 404, "no alert 'nope:gathering:9'"),
    ("GET", "/api/alerts/nope:gathering:9", None, 404, "no alert"),
    ("GET", "/api/alerts?status=pending", None, 422, "status must be one of"),
    ("GET", "/api/alerts?limit=0", None, 422, "limit"),
    ("GET", "/api/alerts/{alert}/snapshot.jpg", None, 404, "has no snapshot"),
    ("GET", "/api/alerts/{alert}/clip.mp4", None, 404, "has no clip"),
    ("GET", "/api/cameras/not-a-camera/frame.jpg", None, 404, "no camera 'not-a-camera'"),
    ("GET", "/api/cameras/freeway/frame.jpg", None, 404, "no live frame yet"),
    ("GET", "/api/cameras/..%2F..%2Fetc/frame.jpg", None, 404, ""),
    ("POST", "/api/login", {"username": "ops"}, 422, "password"),
]


@pytest.mark.parametrize("method,path,body,code,words", BAD_REQUESTS, ids=[f"{m} {p} {c}" for m, p, _, c, _ in
                                                                         BAD_REQUESTS])
def test_bad_requests_get_a_4xx_with_a_message(app, ctx, alerts, method, path, body, code, words) -> None:
    client = client_as(app, "sup")
    url = path.format(alert=alerts[0])
    before = ctx.store.get_alert(alerts[0])
    if isinstance(body, str):
        r = client.request(method, url, content=body, headers={"content-type": "application/json"})
    else:
        r = client.request(method, url, json=body)
    assert r.status_code == code, r.text
    assert words in r.json()["detail"]
    assert ctx.store.get_alert(alerts[0]) == before  # a bad request changes nothing


def test_supervisor_review_changes_a_closed_verdict_and_precision(app, alerts) -> None:
    ops, sup = client_as(app, "ops"), client_as(app, "sup")
    for alert_id, verdict in zip(alerts, ("true_alert", "false_alarm", "false_alarm"), strict=True):
        assert ops.post(f"/api/alerts/{alert_id}/close", json={"verdict": verdict}).status_code == 200

    def overall() -> float:
        rows = sup.get("/api/audit/precision?by=kind").json()
        true, false = sum(r["true_alerts"] for r in rows), sum(r["false_alarms"] for r in rows)
        return true / (true + false)

    assert overall() == pytest.approx(1 / 3)
    r = sup.post(f"/api/alerts/{alerts[1]}/review", json={"verdict": "true_alert", "comment": "re-checked"})
    assert r.status_code == 200 and r.json()["verdict"] == "true_alert"
    assert overall() == pytest.approx(2 / 3)
    rule = {r["key"]: r for r in sup.get("/api/audit/precision?by=rule").json()}
    assert rule["group"]["precision"] == 1.0 and rule["at-table"]["precision"] == 0.0


def test_review_of_an_open_alert_is_refused(app, alerts) -> None:
    r = client_as(app, "sup").post(f"/api/alerts/{alerts[0]}/review", json={"verdict": "true_alert"})
    assert r.status_code == 409 and "only a closed alert" in r.json()["detail"]


def test_legal_hold_is_set_and_audited(app, ctx, alerts) -> None:
    r = client_as(app, "sup").post(f"/api/alerts/{alerts[2]}/legal-hold", json={"hold": True})
    assert r.status_code == 200 and r.json()["legal_hold"] is True
    assert ctx.store.get_alert(alerts[2]).legal_hold
    assert ctx.store.audit_entries(action="alert.legal_hold")[0].user == "sup"


# -- cameras, live frames, evidence --------------------------------------------------------------------------------

def test_cameras_show_health_from_the_run_and_serve_live_frames(app, ctx) -> None:
    ctx.live_dir.mkdir()
    (ctx.live_dir / "freeway.jpg").write_bytes(JPEG)
    health = {"updated_at": 1.0, "cameras": [{"id": "freeway", "health": "failed", "fps": 0.0, "frames": 3,
                                              "dropped": 0, "reconnects": 2, "tracks": 0, "error": "stream lost",
                                              "last_frame_at": 1.0,
                                              "recording": {"frames": 3, "dropped": 0, "segments": 0, "failed": 1}}]}
    (ctx.live_dir / "health.json").write_text(json.dumps(health))
    client = client_as(app, "ops")
    cams = {c["id"]: c for c in client.get("/api/cameras").json()}
    assert set(cams) == set(ctx.camera_ids())
    assert cams["freeway"]["health"] == "failed" and cams["freeway"]["error"] == "stream lost"
    assert cams["freeway"]["recording"] == {"frames": 3, "dropped": 0, "segments": 0, "failed": 1}
    assert cams["indoor-desk"]["health"] is None
    r = client.get("/api/cameras/freeway/frame.jpg")
    assert r.status_code == 200 and r.content == JPEG and r.headers["content-type"] == "image/jpeg"


def test_evidence_is_served_only_from_the_evidence_folder(app, ctx, clock, alerts, tmp_path) -> None:
    inside = ctx.evidence_dir / "pets09-junction" / "a" / "snapshot.jpg"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(JPEG)
    ctx.store.add_evidence(alerts[0], "snapshot", inside, at=clock.now)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"not evidence")
    ctx.store.add_evidence(alerts[0], "clip", outside, at=clock.now)
    client = client_as(app, "ops")
    out = client.get(f"/api/alerts/{alerts[0]}").json()
    assert out["snapshot_url"] == f"/api/alerts/{alerts[0]}/snapshot.jpg"
    assert client.get(out["snapshot_url"]).content == JPEG
    assert client.get(out["clip_url"]).status_code == 404
    assert ctx.store.audit_entries(action="evidence.view")[0].details == {"kind": "snapshot"}
    clip = ctx.evidence_dir / "pets09-junction" / "a" / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    ctx.store.add_evidence(alerts[0], "clip", clip, at=clock.now)
    whole = client.get(out["clip_url"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    part = client.get(out["clip_url"], headers={"Range": "bytes=4-11"})  # how a video element seeks
    assert part.status_code == 206 and part.content == b"ftypisom"


# -- audit ---------------------------------------------------------------------------------------------------------

def test_audit_endpoints_answer_with_rows_plots_and_exports(app, clock, alerts) -> None:
    ops, sup = client_as(app, "ops"), client_as(app, "sup")
    clock.now += 1800.0  # the operator acknowledges half an hour after logging in
    ops.post(f"/api/alerts/{alerts[0]}/acknowledge", json={})
    ack = sup.get("/api/audit/ack-times").json()
    assert ack[0]["count"] == 1 and ack[0]["p50"] == pytest.approx(1800.0)
    load = {r["user"]: r for r in sup.get("/api/audit/operator-load").json()}
    assert load["ops"]["hours_on_duty"] == pytest.approx(0.5) and load["ops"]["alerts_handled"] == 1
    assert load["all"]["alerts_per_operator_hour"] == pytest.approx(len(alerts) / 0.5)
    png = sup.get("/api/audit/plots/precision_by_day.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    csv = sup.get("/api/audit/export.csv")
    assert csv.status_code == 200 and csv.text.count("\n") == 1 + len(alerts)
    assert sup.get("/api/audit/export.parquet").content.startswith(b"PAR1")
    log = sup.get("/api/audit/log?limit=5").json()
    assert log[0]["action"] == "audit.export" and len(log) == 5


@pytest.mark.parametrize("url,words", [
    ("/api/audit/precision?by=weather", "by must be one of"),
    ("/api/audit/precision?since=100&until=50", "must be before"),
    ("/api/audit/plots/pie.png", "no plot 'pie'"),
    ("/api/audit/export.xlsx", "export format"),
    ("/api/audit/log?limit=-1", "limit"),
])
def test_bad_audit_queries(app, url, words) -> None:
    r = client_as(app, "sup").get(url)
    assert 400 <= r.status_code < 500 and words in r.json()["detail"]


# -- users and rules -----------------------------------------------------------------------------------------------

def test_admin_manages_users_and_a_disabled_user_is_logged_out(app) -> None:
    adm, ops = client_as(app, "adm"), client_as(app, "ops")
    r = adm.post("/api/users", json={"username": "night-op", "password": "night-operator-1", "role": "operator"})
    assert r.status_code == 201 and r.json()["role"] == "operator"
    assert adm.post("/api/users", json={"username": "night-op", "password": "night-operator-1",
                                        "role": "operator"}).status_code == 409
    r = adm.post("/api/users", json={"username": "x", "password": "short", "role": "operator"})
    assert r.status_code == 422
    r = adm.post("/api/users", json={"username": "boss", "password": "long-enough-pw", "role": "root"})
    assert r.status_code == 422 and "role" in r.json()["detail"]
    assert adm.patch("/api/users/ops", json={"disabled": True}).json()["disabled"] is True
    assert ops.get("/api/me").status_code == 401
    assert TestClient(app).post("/api/login", json={"username": "ops", "password": PASSWORDS["ops"]}
                                ).status_code == 401
    assert adm.patch("/api/users/ghost", json={"role": "admin"}).status_code == 404
    r = adm.patch("/api/users/adm", json={"role": "operator"})
    assert r.status_code == 422 and "last active admin" in r.json()["detail"]
    assert {u["username"] for u in adm.get("/api/users").json()} >= {"adm", "sup", "ops", "night-op"}


def test_admin_changes_a_rules_alert_settings(app, ctx) -> None:
    adm = client_as(app, "adm")
    body = {"min_score": 0.5, "cooldown": 120.0, "merge_gap": 10.0}
    r = adm.put("/api/rules/pets09-junction/group", json=body)
    assert r.status_code == 200 and r.json()["settings"] == body
    rules = {(x["camera_id"], x["rule_id"]): x for x in adm.get("/api/rules").json()}
    assert rules[("pets09-junction", "group")]["settings"] == body
    assert ctx.alerts_config().settings_for("pets09-junction", "group", "gathering").min_score == 0.5
    assert ctx.store.audit_entries(action="rules.settings")[0].user == "adm"
    assert adm.put("/api/rules/pets09-junction/group", json={"min_score": 2}).status_code == 422
    assert adm.put("/api/rules/nowhere/group", json=body).status_code == 404
    assert adm.put("/api/rules/pets09-junction/nothing", json=body).status_code == 404
    assert client_as(app, "ops").put("/api/rules/pets09-junction/group", json=body).status_code == 403


# -- the live queue over WebSocket ---------------------------------------------------------------------------------

def test_websocket_refuses_without_a_session(app) -> None:
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401


def test_websocket_pushes_the_queue_and_its_changes(app, ctx, alerts) -> None:
    with client_as(app, "ops") as client, client.websocket_connect("/ws") as ws:
        first = ws.receive_json()
        assert first["type"] == "queue" and [a["id"] for a in first["queue"]][0] == alerts[0]
        assert {c["id"] for c in first["cameras"]} == set(ctx.camera_ids())
        start = time.monotonic()
        client.post(f"/api/alerts/{alerts[0]}/acknowledge", json={})
        message = ws.receive_json()
        while alerts[0] in [a["id"] for a in message["queue"]]:
            message = ws.receive_json()
        assert time.monotonic() - start < 5.0
        assert alerts[0] in [a["id"] for a in message["in_hand"]]
        new = seed(ctx, [event(7, camera="freeway", kind="wrong_way", rule="wrong-way", zone="away-lanes")])
        while new[0] not in [a["id"] for a in message["queue"]]:
            message = ws.receive_json()


def test_the_page_is_served_with_a_strict_content_security_policy(app) -> None:
    r = TestClient(app).get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert "script-src 'self'" in r.headers["content-security-policy"]
