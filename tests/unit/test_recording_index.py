"""The recordings' index: requisitions hold their segments (also ones recorded later in their range), the
purge candidates never include held segments, releasing is audited, grants allow only inside their window."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.alerts.store import AlertStore
from analytics.console.accounts import Accounts
from analytics.recording.index import RecordingIndex


@pytest.fixture
def index(tmp_path: Path):
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        yield RecordingIndex(store)


def _add(index: RecordingIndex, camera: str, t: float) -> int:
    return index.add_segment(camera, start=t, end=t + 60, wall_start=t, wall_end=t + 60, frames=300, size=1000,
                             path=f"/rec/{camera}/{t:.0f}.mp4", at=t + 60)


def test_requisitions_hold_their_segments_until_released(index: RecordingIndex) -> None:
    ids = {(cam, t): _add(index, cam, t) for cam in ("a", "b") for t in (0.0, 60.0, 120.0)}
    req = index.create_requisition("PV-2026/0042", authority="Commissariat", officer="Lt Martin", reason="theft",
                                   cameras=["a"], start=70.0, end=200.0, user="sup", at=500.0)
    assert req.open and req.cameras == ("a",)
    later = _add(index, "a", 180.0)  # recorded after the requisition, inside its range: held too
    held = {s.id for s in index.segments() if s.held}
    assert held == {ids[("a", 60.0)], ids[("a", 120.0)], later}
    assert {s.id for s in index.requisition_segments("PV-2026/0042")} == held
    assert held.isdisjoint(s.id for s in index.purgeable())
    assert index.remove_segments(held, user="system", reason="retention", at=600.0) == 0  # refused: held
    index.release("PV-2026/0042", user="sup2", at=700.0)
    assert not any(s.held for s in index.segments())
    with pytest.raises(ValueError, match="already released by 'sup2'"):
        index.release("PV-2026/0042", user="sup", at=800.0)
    actions = [(e.action, e.user) for e in index.store.audit_entries()]
    assert ("requisition.create", "sup") in actions and ("requisition.release", "sup2") in actions


@pytest.mark.parametrize("kwargs,words", [
    ({"reference": "../etc"}, "invalid requisition reference"),
    ({"officer": " "}, "needs its officer"),
    ({"cameras": []}, "at least one camera"),
    ({"end": 10.0}, "must be after its start"),
])
def test_bad_requisitions_are_refused(index: RecordingIndex, kwargs, words) -> None:
    args = {"reference": "R1", "authority": "PN", "officer": "X", "reason": "y", "cameras": ["a"], "start": 50.0,
            "end": 100.0, "user": "sup", "at": 1.0, **kwargs}
    with pytest.raises(ValueError, match=words):
        index.create_requisition(args.pop("reference"), **args)
    assert index.requisitions() == []


def test_purge_candidates_are_the_oldest_unheld(index: RecordingIndex) -> None:
    first, second = _add(index, "a", 0.0), _add(index, "a", 60.0)
    assert [s.id for s in index.purgeable()] == [first, second]
    assert [s.id for s in index.purgeable(before=100.0)] == [first]
    assert index.remove_segments([first], user="system", reason="retention", at=10.0) == 1
    assert [s.id for s in index.segments()] == [second]


def test_grants_allow_only_their_cameras_inside_their_window(index: RecordingIndex) -> None:
    accounts = Accounts(index.store)
    accounts.create_user("police1", "a-long-password", "police", by="adm")
    accounts.create_user("op1", "a-long-password", "operator", by="adm")
    with pytest.raises(ValueError, match="relay grants go to police accounts; 'op1' has the role operator"):
        index.grant("op1", ["a"], start=100.0, end=200.0, recorded=False, user="adm", at=50.0)
    g = index.grant("police1", ["a", "b"], start=100.0, end=200.0, recorded=False, user="adm", at=50.0)
    assert g.allows("a", 150.0) and not g.allows("a", 99.0) and not g.allows("a", 200.0)
    assert not g.allows("c", 150.0) and not g.allows("a", 150.0, recorded=True)
    revoked = index.revoke(g.id, user="adm", at=160.0)
    assert not revoked.allows("a", 170.0)
