"""Recordings, requisitions and the police relay in the console API: each role against each endpoint, the
police grant window, and every view audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from analytics.console.app import create_app
from analytics.recording.index import RecordingIndex
from console_support import PASSWORDS, Clock, make_context
from console_support import client_as as logged_in

LOGINS = {**PASSWORDS, "pol": "police-pass-12"}
MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(64)
T0 = 1_780_000_000.0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def ctx(tmp_path: Path, clock: Clock):
    context = make_context(tmp_path, clock)
    context.recordings_dir = tmp_path / "recordings"
    context.exports_dir = tmp_path / "exports"
    context.signing_key = tmp_path / "keys" / "export.pem"
    context.accounts.create_user("pol", LOGINS["pol"], "police", by="test")
    yield context
    context.store.close()


@pytest.fixture
def segments(ctx) -> list[int]:
    """Two freeway segments of a minute each, ending an hour ago."""
    ids = []
    for k in range(2):
        path = ctx.recordings_dir / "freeway" / f"seg{k}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(MP4)
        start = T0 - 3600 - 120 + 60 * k
        ids.append(RecordingIndex(ctx.store).add_segment("freeway", start=start, end=start + 60, wall_start=start,
                                                         wall_end=start + 60, frames=300, size=len(MP4),
                                                         path=path, at=start + 60))
    return ids


@pytest.fixture
def app(ctx):
    return create_app(ctx)


def client_as(app, user: str | None) -> TestClient:
    return logged_in(app, user, LOGINS)


def _grant(ctx, **kwargs) -> int:
    args = {"cameras": ["freeway"], "start": T0 - 60, "end": T0 + 3600, "recorded": False, "user": "adm",
            "at": T0, **kwargs}
    return RecordingIndex(ctx.store).grant("pol", args.pop("cameras"), **args).id


ENDPOINTS = [  # method, path, body, who may (the others get 403; without a session 401)
    ("GET", "/api/recordings", None, {"sup", "adm"}),
    ("GET", "/api/recordings/at?camera=freeway&t={t}", None, {"sup", "adm"}),
    ("GET", "/api/recordings/{seg}.mp4", None, {"sup", "adm"}),
    ("GET", "/api/requisitions", None, {"sup", "adm"}),
    ("POST", "/api/requisitions", {"reference": "PV/{user}", "authority": "PN", "officer": "Lt X", "reason": "theft",
                                   "cameras": ["freeway"], "start": T0 - 4000, "end": T0 - 3000}, {"sup", "adm"}),
    ("POST", "/api/requisitions/release", {"reference": "nothing"}, {"sup", "adm"}),  # 404 for those allowed
    ("GET", "/api/relay/grants", None, {"adm"}),
    ("POST", "/api/relay/grants", {"username": "pol", "cameras": ["freeway"], "start": T0, "end": T0 + 60},
     {"adm"}),
    ("GET", "/api/relay/cameras/freeway/frame.jpg", None, {"pol"}),
    ("GET", "/api/audit/chain", None, {"sup", "adm"}),
    ("GET", "/api/audit/log/export.csv", None, {"sup", "adm"}),
    ("GET", "/api/alerts", None, {"ops", "sup", "adm"}),
    ("GET", "/api/cameras", None, {"ops", "sup", "adm"}),
    ("GET", "/api/cameras/freeway/frame.jpg", None, {"ops", "sup", "adm"}),
]


@pytest.mark.parametrize("method,path,body,allowed", ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
def test_each_role_against_each_endpoint(app, ctx, segments, method, path, body, allowed) -> None:
    _grant(ctx)
    (ctx.live_dir).mkdir(exist_ok=True)
    (ctx.live_dir / "freeway.jpg").write_bytes(b"\xff\xd8jpeg\xff\xd9")
    url = path.format(t=T0 - 3600 - 90, seg=segments[0])
    assert TestClient(app).request(method, url, json=body).status_code == 401
    for user in ("pol", "ops", "sup", "adm"):
        payload = None if body is None else {k: (v.format(user=user) if isinstance(v, str) else v)
                                             for k, v in body.items()}
        r = client_as(app, user).request(method, url, json=payload)
        if user in allowed:
            assert r.status_code in (200, 201, 404), (user, r.status_code, r.text)
            if path.startswith("/api/requisitions/release"):
                assert r.status_code == 404 and "no requisition 'nothing'" in r.json()["detail"]
        else:
            assert r.status_code == 403, (user, r.status_code, r.text)


def test_police_see_granted_cameras_only_inside_the_window_and_every_view_is_audited(app, ctx, clock) -> None:
    ctx.live_dir.mkdir()
    for cam in ("freeway", "indoor-desk"):
        (ctx.live_dir / f"{cam}.jpg").write_bytes(b"\xff\xd8jpeg\xff\xd9")
    _grant(ctx, start=T0 + 100, end=T0 + 200)
    pol = client_as(app, "pol")
    assert pol.get("/api/relay/cameras").json() == []
    assert pol.get("/api/relay/cameras/freeway/frame.jpg").status_code == 403  # before the window
    clock.now = T0 + 150
    assert [c["id"] for c in pol.get("/api/relay/cameras").json()] == ["freeway"]
    assert pol.get("/api/relay/cameras/freeway/frame.jpg").status_code == 200
    assert pol.get("/api/relay/cameras/indoor-desk/frame.jpg").status_code == 403  # not granted
    assert pol.get("/api/relay/recordings?camera=freeway").status_code == 403  # live only
    clock.now = T0 + 200
    r = pol.get("/api/relay/cameras/freeway/frame.jpg")
    assert r.status_code == 403 and "outside its window" in r.json()["detail"]
    audit = [(e.action, e.target) for e in ctx.store.audit_entries(user="pol")]
    assert ("live.view", "freeway") in audit
    assert audit.count(("relay.refused", "freeway")) == 3 and ("relay.refused", "indoor-desk") in audit
    assert pol.get("/api/alerts").status_code == 403
    with pol, pol.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 4403


def test_a_recorded_grant_lets_police_play_the_granted_camera(app, ctx, segments) -> None:
    _grant(ctx, recorded=True)
    pol = client_as(app, "pol")
    rows = pol.get("/api/relay/recordings?camera=freeway").json()
    assert [r["id"] for r in rows] == segments
    r = pol.get(rows[0]["url"])
    assert r.status_code == 200 and r.content == MP4
    assert pol.get("/api/recordings").status_code == 403  # the centre's own listing stays closed
    assert ("recording.view", "freeway") in [(e.action, e.target) for e in ctx.store.audit_entries(user="pol")]


def test_supervisors_play_recordings_and_jump_to_a_moment(app, ctx, segments) -> None:
    sup = client_as(app, "sup")
    listed = sup.get("/api/recordings?camera=freeway").json()
    assert [s["id"] for s in listed] == segments and not any(s["held"] for s in listed)
    at = sup.get(f"/api/recordings/at?camera=freeway&t={T0 - 3600 - 30}").json()
    assert at["id"] == segments[1] and at["offset"] == pytest.approx(30.0)
    assert sup.get(f"/api/recordings/at?camera=freeway&t={T0}").status_code == 404
    assert sup.get("/api/recordings/at?camera=nowhere&t=1").status_code == 422
    assert sup.get(f"/api/recordings/{segments[0]}.mp4").content == MP4
    assert sup.get("/api/recordings/999.mp4").status_code == 404
    assert [e.action for e in ctx.store.audit_entries(user="sup")].count("recording.view") == 1


def test_a_requisition_holds_its_segments_and_release_is_logged(app, ctx, segments) -> None:
    sup = client_as(app, "sup")
    body = {"reference": "PV-2026/0042", "authority": "Commissariat central", "officer": "Lt Martin",
            "reason": "vol à l'arraché", "cameras": ["freeway"], "start": T0 - 3700, "end": T0 - 3600}
    r = sup.post("/api/requisitions", json=body)
    assert r.status_code == 201 and r.json()["open"]
    assert sup.post("/api/requisitions", json=body).status_code == 409
    assert sup.post("/api/requisitions", json={**body, "reference": "X", "cameras": ["mars"]}).status_code == 422
    assert sup.post("/api/requisitions", json={**body, "reference": "Y", "end": T0 - 5000}).status_code == 422
    held = [s["id"] for s in sup.get("/api/recordings").json() if s["held"]]
    assert held == segments  # both overlap [T0-3700, T0-3600)
    r = sup.post("/api/requisitions/release", json={"reference": "PV-2026/0042"})
    assert r.status_code == 200 and r.json()["released_by"] == "sup"
    assert sup.post("/api/requisitions/release", json={"reference": "PV-2026/0042"}).status_code == 409
    assert not any(s["held"] for s in sup.get("/api/recordings").json())
    actions = [e.action for e in ctx.store.audit_entries(target="PV-2026/0042")]
    assert actions == ["requisition.create", "requisition.release"]


def test_the_audit_chain_status_and_export(app, ctx) -> None:
    sup = client_as(app, "sup")
    assert sup.get("/api/audit/chain").json()["intact"] is True
    csv = sup.get("/api/audit/log/export.csv").text.splitlines()
    assert csv[0] == "id,at,user,action,target,details,prev_hash,hash" and len(csv) > 3


def test_a_requisition_exported_from_the_console_verifies_and_a_changed_byte_is_named(app, ctx, capsys) -> None:
    import numpy as np

    from analytics.cli import main
    from analytics.video_io import Mp4Writer

    index = RecordingIndex(ctx.store)
    for k in range(2):  # two real 2 s segments of 5 fps video
        path = ctx.recordings_dir / "indoor-desk" / f"real{k}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with Mp4Writer(path, rate=5) as writer:
            for i in range(10):
                writer.write(np.full((96, 128, 3), 20 * i + 40 * k, np.uint8))
        start = T0 - 600 + 2 * k
        index.add_segment("indoor-desk", start=start, end=start + 2, wall_start=start, wall_end=start + 2,
                          frames=10, size=path.stat().st_size, path=path, at=start + 2)
    sup = client_as(app, "sup")
    sup.post("/api/requisitions", json={"reference": "PV-77", "authority": "PN", "officer": "Lt X", "reason": "r",
                                        "cameras": ["indoor-desk"], "start": T0 - 700, "end": T0 - 500})
    r = sup.post("/api/requisitions/export", json={"reference": "PV-77"})
    assert r.status_code == 200, r.text
    assert set(r.json()["files"]) == {"indoor-desk.mp4", "manifest.json", "manifest.sig"}
    assert sup.post("/api/requisitions/export", json={"reference": "PV-77"}).status_code == 409
    detail = sup.get("/api/requisitions/detail?reference=PV-77").json()
    assert len(detail["segments"]) == 2 and "manifest.json" in detail["export_files"]
    clip = sup.get("/api/requisitions/export-file?reference=PV-77&name=indoor-desk.mp4")
    assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
    assert sup.get("/api/requisitions/export-file?reference=PV-77&name=../alerts.db").status_code == 422
    actions = [e.action for e in ctx.store.audit_entries(target="PV-77")]
    assert actions == ["requisition.create", "requisition.export", "export.download"]

    folder = ctx.exports_dir / "PV-77"
    assert main(["verify", str(folder)]) == 0
    data = bytearray((folder / "indoor-desk.mp4").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "indoor-desk.mp4").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", str(folder)]) == 1
    assert "indoor-desk.mp4" in capsys.readouterr().out
