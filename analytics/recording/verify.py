"""Check a requisition export (:mod:`analytics.recording.export`): the manifest's signature, every file's SHA-256
and size, and that the folder holds exactly the files the manifest lists. Each problem names its file.

Without a trusted public key the signature is checked with the key the manifest carries, which proves the files
are those that key signed, not who holds the key: compare the reported fingerprint with the centre's published
one, or pass the centre's public key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from analytics.recording.export import FORMAT, MANIFEST, SIGNATURE, sha256_file
from analytics.recording.signing import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    KeyFileError,
    canonical_json,
    load_public_key,
    public_key_fingerprint,
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``file`` (path relative to the export folder), ``kind`` (``signature``, ``manifest``,
    ``key``, ``hash``, ``missing``, ``extra``) and a sentence saying what is wrong."""

    file: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_export`; ``ok`` when there is no problem."""

    export_dir: Path
    problems: tuple[Problem, ...]
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    fingerprint: str | None = None  # of the key the signature was checked with
    key_trusted: bool = False  # a trusted key was given and the manifest names it
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def tampered_files(self) -> list[str]:
        """The files named by the problems, in order, each once."""
        return list(dict.fromkeys(p.file for p in self.problems))


def verify_export(export_dir: Path, *, trusted_public_key: bytes | None = None) -> VerifyReport:
    """Check the export in ``export_dir``; ``trusted_public_key``: raw 32 bytes the signature must be made with.

    Raises:
        FileNotFoundError / NotADirectoryError: ``export_dir`` is not a folder.
        ValueError: it holds neither ``manifest.json`` nor ``manifest.sig`` (not an export), or the trusted key
            is not 32 bytes.
    """
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise (NotADirectoryError if export_dir.exists() else FileNotFoundError)(
            f"{export_dir} is not a folder (expected an export folder with {MANIFEST} and {SIGNATURE})")
    if trusted_public_key is not None and len(trusted_public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a trusted Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, got {len(trusted_public_key)}")
    manifest_path, sig_path = export_dir / MANIFEST, export_dir / SIGNATURE
    if not manifest_path.is_file() and not sig_path.is_file():
        raise ValueError(f"{export_dir} is not a requisition export: it has neither {MANIFEST} nor {SIGNATURE}")
    problems: list[Problem] = []
    data = _read(manifest_path, problems)
    signature = _signature(sig_path, problems)
    manifest = _manifest(data, problems) if data is not None else None
    key, trusted = _signing_key(manifest, trusted_public_key, problems)
    if data is not None and signature is not None and key is not None:
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
        except InvalidSignature:
            problems.insert(0, Problem(MANIFEST, "signature", f"the signature in {SIGNATURE} does not match "
                                       f"{MANIFEST} under key {public_key_fingerprint(key)}: {MANIFEST} (or "
                                       f"{SIGNATURE}) was altered after signing"))
    checked = _check_files(export_dir, manifest, problems) if manifest is not None else 0
    return VerifyReport(export_dir, tuple(problems), manifest, public_key_fingerprint(key) if key else None,
                        trusted, checked)


def _read(path: Path, problems: list[Problem]) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problems.append(Problem(path.name, "missing", "missing: the export cannot be verified without it"))
    except OSError as err:
        problems.append(Problem(path.name, "missing", f"cannot be read: {err}"))
    return None


def _signature(path: Path, problems: list[Problem]) -> bytes | None:
    raw = _read(path, problems)
    if raw is None:
        return None
    try:
        signature = base64.b64decode(raw.strip(), validate=True)
    except (ValueError, binascii.Error):
        signature = b""
    if len(signature) != SIGNATURE_BYTES:
        problems.append(Problem(SIGNATURE, "signature", f"not a base64 Ed25519 signature ({SIGNATURE_BYTES} "
                                "bytes): the file was altered"))
        return None
    return signature


def _manifest(data: bytes, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        problems.append(Problem(MANIFEST, "manifest", f"not valid JSON ({err}): the file was altered"))
        return None
    if not isinstance(manifest, dict):
        problems.append(Problem(MANIFEST, "manifest", "not a JSON object: the file was altered"))
        return None
    try:
        canonical = canonical_json(manifest) == data
    except (ValueError, TypeError):
        canonical = False
    if not canonical:
        problems.append(Problem(MANIFEST, "manifest", "not in the canonical form it was signed in: the file was "
                                "altered (even reformatting breaks the signature)"))
    if manifest.get("format") != FORMAT:
        problems.append(Problem(MANIFEST, "manifest", f"unknown format {manifest.get('format')!r}, expected "
                                f"{FORMAT!r}"))
    return manifest


def _signing_key(manifest: dict[str, Any] | None, trusted: bytes | None,
                 problems: list[Problem]) -> tuple[bytes | None, bool]:
    """The key to check the signature with (the trusted one when given), and whether the manifest names it."""
    embedded = None
    if manifest is not None:
        try:
            embedded = base64.b64decode(manifest["signing_key"]["public_key"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            embedded = None
        if embedded is None or len(embedded) != PUBLIC_KEY_BYTES:
            embedded = None
            problems.append(Problem(MANIFEST, "key", "carries no readable Ed25519 public key "
                                    "(signing_key.public_key)"))
    if trusted is None:
        return embedded, False
    if embedded is not None and embedded != trusted:
        problems.append(Problem(MANIFEST, "key", f"signed with key {public_key_fingerprint(embedded)}, not the "
                                f"trusted key {public_key_fingerprint(trusted)}"))
    return trusted, embedded == trusted


def _check_files(export_dir: Path, manifest: dict[str, Any], problems: list[Problem]) -> int:
    """Hash every listed file and look for unlisted ones; returns how many listed files were hashed."""
    listed: set[str] = set()
    checked = 0
    entries = manifest.get("files")
    if not isinstance(entries, list):
        problems.append(Problem(MANIFEST, "manifest", "has no list of files"))
        entries = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", ".."):
            problems.append(Problem(MANIFEST, "manifest", f"lists a file with an invalid name: {name!r}"))
            continue
        listed.add(name)
        path = export_dir / name
        if not path.is_file():
            problems.append(Problem(name, "missing", "listed in the manifest but missing from the export"))
            continue
        checked += 1
        digest, size = sha256_file(path), path.stat().st_size
        if digest != entry.get("sha256") or size != entry.get("bytes"):
            problems.append(Problem(name, "hash", f"altered: its SHA-256 ({digest[:16]}..., {size} bytes) is not "
                                    f"the one in the manifest ({str(entry.get('sha256'))[:16]}..., "
                                    f"{entry.get('bytes')} bytes)"))
    for root, _dirs, names in os.walk(export_dir):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(root, name), export_dir)
            if rel not in listed and rel not in (MANIFEST, SIGNATURE):
                problems.append(Problem(rel, "extra", "not listed in the manifest: it was added to the export"))
    return checked


def verify_main(export_dir: Path, key_path: Path | None = None, *, out: TextIO | None = None) -> int:
    """``analytics verify EXPORT_DIR [--key PUBKEY_FILE]``: print a readable report to ``out`` (stdout).

    Returns 0 when the export is intact, 1 when it was tampered with (each problem is printed with its file),
    2 for bad input (no such folder, not an export, an unreadable key file; the reason goes to stderr).
    """
    out = out or sys.stdout
    try:
        trusted = load_public_key(Path(key_path)) if key_path is not None else None
        report = verify_export(Path(export_dir), trusted_public_key=trusted)
    except (KeyFileError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_report(report, out, trusted_given=trusted is not None)
    return 0 if report.ok else 1


def _print_report(report: VerifyReport, out: TextIO, *, trusted_given: bool) -> None:
    manifest = report.manifest or {}
    req = manifest.get("requisition") if isinstance(manifest.get("requisition"), dict) else {}
    print(f"export {report.export_dir}", file=out)
    if req:
        print(f"  requisition {req.get('reference')} ({req.get('authority')}, {req.get('officer')}), exported by "
              f"{manifest.get('exported_by')} at {manifest.get('exported_at_utc')}", file=out)
    if report.fingerprint:
        if report.key_trusted:
            trust = "the trusted key"
        elif trusted_given:
            trust = "the trusted key given (the manifest names another)"
        else:
            trust = ("the key in the manifest, NOT checked against a trusted key (pass --key, or compare this "
                     "fingerprint with the centre's)")
        print(f"  signature checked with key {report.fingerprint}: {trust}", file=out)
    print(f"  files checked: {report.files_checked}", file=out)
    if report.ok:
        print("OK: the signature is valid and every file matches its SHA-256 in the manifest", file=out)
        return
    print(f"TAMPERED: {len(report.problems)} problem(s)", file=out)
    for problem in report.problems:
        print(f"  {problem}", file=out)
