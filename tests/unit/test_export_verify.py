"""Requisition exports and their verification on synthetic segments encoded here: an export verifies; one byte
changed in a clip or the manifest, a file removed or added, or another signing key makes ``verify`` fail and name
the file; the watermark is drawn and the private zone stays blank; signing keys are created private and a key
readable by every user is refused."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from analytics.alerts.store import AlertStore
from analytics.recording.export import MANIFEST, SIGNATURE, export_requisition
from analytics.recording.index import RecordingIndex
from analytics.recording.signing import (
    KeyFileError,
    canonical_json,
    load_or_create_key,
    load_public_key,
    public_key_fingerprint,
    public_key_pem,
    public_key_raw,
)
from analytics.recording.verify import verify_export, verify_main
from analytics.video_io import Mp4Writer, read_frames

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FPS, SEG_FRAMES = 10, 20  # segments of 2 s
SIZE = (320, 240)
PRIVATE = (slice(0, 100), slice(240, 320))  # rows, columns blanked "at the source"
REF = "PV-2026/0042"


def _image(k: int) -> np.ndarray:
    """Frame ``k`` of a camera: grey, a bright block at x = 5k, the private zone black."""
    image = np.full((SIZE[1], SIZE[0], 3), 120, np.uint8)
    image[100:140, 5 * k: 5 * k + 20] = 250
    image[PRIVATE] = 0
    return image


def _add_segments(index: RecordingIndex, folder: Path, camera: str, count: int) -> None:
    """``count`` consecutive 2 s segments from T0; media time starts at 100 s (not the wall clock)."""
    for s in range(count):
        path = folder / f"{camera}-{s}.mp4"
        with Mp4Writer(path, rate=FPS) as writer:
            for k in range(SEG_FRAMES):
                writer.write(_image(s * SEG_FRAMES + k))
        index.add_segment(camera, start=100.0 + 2 * s, end=102.0 + 2 * s, wall_start=T0 + 2 * s,
                          wall_end=T0 + 2 * s + 2, frames=SEG_FRAMES, size=path.stat().st_size, path=path, at=T0)


@pytest.fixture
def index(tmp_path: Path):
    with AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        index = RecordingIndex(store)
        (tmp_path / "rec").mkdir()
        _add_segments(index, tmp_path / "rec", "cam-a", 2)
        _add_segments(index, tmp_path / "rec", "cam-b", 1)
        yield index


def _requisition(index: RecordingIndex, cameras=("cam-a", "cam-b", "cam-c"), start=T0 + 0.95, end=T0 + 2.95,
                 ref=REF) -> None:
    index.create_requisition(ref, authority="Commissariat central", officer="Lt Martin", reason="theft",
                             cameras=cameras, start=start, end=end, user="sup", at=T0 + 100)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def export(index: RecordingIndex, key: Ed25519PrivateKey, tmp_path: Path) -> Path:
    _requisition(index)
    return export_requisition(index, REF, tmp_path / "exports", key=key, user="alice", clock=lambda: T0 + 200)


def test_an_export_verifies_and_documents_its_footage(export: Path, index: RecordingIndex,
                                                      key: Ed25519PrivateKey) -> None:
    assert export.name == "PV-2026_0042"
    assert sorted(p.name for p in export.iterdir()) == ["cam-a.mp4", "cam-b.mp4", MANIFEST, SIGNATURE]
    manifest = json.loads((export / MANIFEST).read_bytes())
    assert manifest["requisition"]["reference"] == REF and manifest["requisition"]["officer"] == "Lt Martin"
    assert manifest["exported_by"] == "alice" and manifest["exported_at"] == T0 + 200
    assert manifest["signing_key"]["fingerprint"] == public_key_fingerprint(key)
    assert manifest["missing"] == [{"camera": "cam-c", "reason": "no recorded footage in the time range",
                                    "unreadable_segments": []}]
    files = {f["camera"]: f for f in manifest["files"]}
    # frames k = 10..29 of cam-a (wall T0 + k/10 in [T0 + 0.95, T0 + 2.95)), across both segments
    assert files["cam-a"]["frames"] == 20 and [s["id"] for s in files["cam-a"]["source_segments"]] == [1, 2]
    assert files["cam-a"]["first_frame"] == pytest.approx(T0 + 1.0)
    assert files["cam-a"]["last_frame"] == pytest.approx(T0 + 2.9)
    assert files["cam-a"]["first_frame_utc"] == "2026-01-01T00:00:01.000Z"
    assert files["cam-b"]["frames"] == 10  # cam-b has one segment: k = 10..19
    report = verify_export(export, trusted_public_key=public_key_raw(key))
    assert report.ok and report.key_trusted and report.files_checked == 2, report.problems
    entries = index.store.audit_entries(action="requisition.export")
    assert len(entries) == 1 and entries[0].user == "alice" and entries[0].target == REF
    assert entries[0].details["manifest_sha256"] == hashlib.sha256((export / MANIFEST).read_bytes()).hexdigest()


def test_exported_frames_are_watermarked_and_keep_the_private_zone_blank(export: Path) -> None:
    manifest = json.loads((export / MANIFEST).read_bytes())
    entry = next(f for f in manifest["files"] if f["camera"] == "cam-a")
    x0, y0, x1, y1 = entry["watermark"]["box"]
    assert entry["watermark"]["corner"] == "bottom-left" and x0 < 10 and y1 > SIZE[1] - 10
    frames = list(read_frames(export / "cam-a.mp4"))
    assert len(frames) == 20
    assert [f.time for f in frames] == pytest.approx([k / 10 for k in range(20)], abs=2e-3)  # recorded pace
    for i, frame in enumerate(frames):
        source = _image(10 + i).astype(np.int16)
        image = frame.image.astype(np.int16)
        inside = np.abs(image[y0:y1, x0:x1] - source[y0:y1, x0:x1]).mean()
        outside = np.abs(image[:y0] - source[:y0]).mean()
        assert inside > 30 and outside < 8, (i, inside, outside)  # the watermark is there, the footage intact
        assert image[PRIVATE][4:-4, 4:-4].max() <= 16, i  # blank, eroded 4 px for codec ringing


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def _flip_signature(path: Path) -> None:
    """One bit of the signature changed, still well-formed base64."""
    raw = bytearray(base64.b64decode(path.read_bytes()))
    raw[10] ^= 0x01
    path.write_bytes(base64.b64encode(bytes(raw)))


@pytest.mark.parametrize(("change", "file", "kind"), [
    (lambda d: _flip(d / "cam-a.mp4"), "cam-a.mp4", "hash"),
    (lambda d: _flip(d / "cam-b.mp4", 0.99), "cam-b.mp4", "hash"),
    (lambda d: _flip(d / MANIFEST), MANIFEST, ("signature", "manifest")),  # "manifest": the JSON broke
    (lambda d: (d / MANIFEST).write_bytes((d / MANIFEST).read_bytes().replace(b'"alice"', b'"bob!!"')), MANIFEST,
     "signature"),
    (lambda d: (d / MANIFEST).write_bytes(json.dumps(json.loads((d / MANIFEST).read_bytes()), indent=1).encode()),
     MANIFEST, "manifest"),
    (lambda d: _flip_signature(d / SIGNATURE), MANIFEST, "signature"),  # the message names manifest.sig too
    (lambda d: (d / SIGNATURE).write_text("not base64!"), SIGNATURE, "signature"),
    (lambda d: (d / "cam-b.mp4").unlink(), "cam-b.mp4", "missing"),
    (lambda d: (d / SIGNATURE).unlink(), SIGNATURE, "missing"),
    (lambda d: (d / "notes.txt").write_text("hello"), "notes.txt", "extra"),
    (lambda d: shutil.copy(d / "cam-a.mp4", d / "cam-c.mp4"), "cam-c.mp4", "extra"),
])
def test_a_changed_export_fails_and_names_the_file(export: Path, change, file: str, kind: str | tuple[str, ...]
                                                    ) -> None:
    change(export)
    report = verify_export(export)
    assert not report.ok
    kinds = {kind} if isinstance(kind, str) else set(kind)
    assert any(p.file == file and p.kind in kinds for p in report.problems), report.problems
    out = io.StringIO()
    assert verify_main(export, None, out=out) == 1
    assert "TAMPERED" in out.getvalue() and file in out.getvalue()


def test_a_clip_changed_and_rehashed_in_the_manifest_breaks_the_signature(export: Path) -> None:
    _flip(export / "cam-a.mp4")
    manifest = json.loads((export / MANIFEST).read_bytes())
    entry = next(f for f in manifest["files"] if f["name"] == "cam-a.mp4")
    entry["sha256"] = hashlib.sha256((export / "cam-a.mp4").read_bytes()).hexdigest()
    (export / MANIFEST).write_bytes(canonical_json(manifest))
    report = verify_export(export)
    assert [(p.file, p.kind) for p in report.problems] == [(MANIFEST, "signature")]


def test_an_export_re_signed_with_another_key_fails_against_the_trusted_key(export: Path, key, tmp_path: Path
                                                                            ) -> None:
    other = Ed25519PrivateKey.generate()
    manifest = json.loads((export / MANIFEST).read_bytes())
    manifest["signing_key"]["public_key"] = base64.b64encode(public_key_raw(other)).decode()
    manifest["signing_key"]["fingerprint"] = public_key_fingerprint(other)
    data = canonical_json(manifest)
    (export / MANIFEST).write_bytes(data)
    (export / SIGNATURE).write_bytes(base64.b64encode(other.sign(data)))
    assert verify_export(export).ok  # self-consistent: only a trusted key tells
    report = verify_export(export, trusted_public_key=public_key_raw(key))
    assert (MANIFEST, "key") in {(p.file, p.kind) for p in report.problems} and not report.key_trusted
    pub = tmp_path / "centre.pub.pem"
    pub.write_bytes(public_key_pem(key))
    out = io.StringIO()
    assert verify_main(export, pub, out=out) == 1 and public_key_fingerprint(other) in out.getvalue()


def test_verify_main_exit_codes(export: Path, key, tmp_path: Path, capsys) -> None:
    pub = tmp_path / "centre.pub"
    pub.write_text(base64.b64encode(public_key_raw(key)).decode() + "\n")
    out = io.StringIO()
    assert verify_main(export, pub, out=out) == 0
    assert "OK" in out.getvalue() and "the trusted key" in out.getvalue()
    assert verify_main(tmp_path / "nowhere", None) == 2
    assert verify_main(tmp_path / "rec", None) == 2  # a folder that is not an export
    (tmp_path / "bad.pub").write_text("nope")
    assert verify_main(export, tmp_path / "bad.pub") == 2
    assert "no Ed25519 public key" in capsys.readouterr().err


def test_exports_refuse_what_they_cannot_do(index: RecordingIndex, key, tmp_path: Path) -> None:
    out = tmp_path / "exports"
    with pytest.raises(KeyError, match="no requisition"):
        export_requisition(index, "nope", out, key=key, user="alice")
    _requisition(index, cameras=("cam-a",), start=T0 + 50, end=T0 + 60, ref="PV-empty")
    with pytest.raises(ValueError, match="no recorded footage of cam-a"):
        export_requisition(index, "PV-empty", out, key=key, user="alice")
    assert not out.exists() or not any(out.iterdir())  # nothing left behind
    _requisition(index, cameras=("cam-a",), ref="PV-1")
    export_requisition(index, "PV-1", out, key=key, user="alice")
    with pytest.raises(FileExistsError):
        export_requisition(index, "PV-1", out, key=key, user="alice")
    index.release("PV-1", user="sup", at=T0 + 300)
    with pytest.raises(ValueError, match="released"):
        export_requisition(index, "PV-1", tmp_path / "again", key=key, user="alice")


def test_a_lost_segment_file_is_documented_not_fatal(index: RecordingIndex, key, tmp_path: Path) -> None:
    Path(index.segment(1).path).unlink()  # cam-a's first segment
    _requisition(index)
    export = export_requisition(index, REF, tmp_path / "exports", key=key, user="alice", clock=lambda: T0 + 200)
    manifest = json.loads((export / MANIFEST).read_bytes())
    entry = next(f for f in manifest["files"] if f["camera"] == "cam-a")
    assert entry["frames"] == 10 and [s["id"] for s in entry["source_segments"]] == [2]
    assert [u["segment"] for u in entry["unreadable_segments"]] == [1]
    assert verify_export(export).ok


def test_signing_keys_are_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "export_ed25519.pem"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create_key(path)
    assert public_key_raw(again) == public_key_raw(key)
    assert load_public_key(path) == public_key_raw(key)  # a private key file gives its public half
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    pem = tmp_path / "pub.pem"
    pem.write_bytes(public_key_pem(key))
    raw = tmp_path / "pub.raw"
    raw.write_bytes(public_key_raw(key))
    hexed = tmp_path / "pub.hex"
    hexed.write_text(public_key_raw(key).hex())
    assert {load_public_key(p) for p in (pem, raw, hexed)} == {public_key_raw(key)}
    assert public_key_fingerprint(key) == public_key_fingerprint(public_key_raw(key))
    assert public_key_fingerprint(key).startswith("sha256:") and len(public_key_fingerprint(key)) == 71


def test_a_key_readable_by_every_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_key(path)
    os.chmod(path, 0o600)
    load_or_create_key(path)
    path.write_text("not a key")
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_or_create_key(path)


def test_verifying_loads_neither_opencv_nor_pyav() -> None:
    code = "import sys, analytics.recording.verify; print('cv2' in sys.modules or 'av' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
