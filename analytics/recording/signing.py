"""Ed25519 keys that sign requisition exports, and the canonical JSON bytes that are signed.

The private key is a PKCS#8 PEM file (unencrypted: it is protected by its file mode, 0600 in a 0700 folder).
A public key travels as its 32 raw bytes, base64-encoded; its fingerprint is ``sha256:`` and the SHA-256 of those
raw bytes in hex, which is what an authority compares with the one the centre published.

Third parties can check a manifest without this package::

    base64 -d manifest.sig > manifest.sig.bin
    openssl pkeyutl -verify -pubin -inkey export_ed25519.pub.pem -rawin -in manifest.json -sigfile manifest.sig.bin
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

#: Raw Ed25519 public key and signature sizes, bytes.
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


class KeyFileError(ValueError):
    """A key file that cannot be used: unreadable, not an Ed25519 key, or readable by every user."""


def canonical_json(value: Any) -> bytes:
    """The canonical bytes of a JSON value: keys sorted, no spaces, ASCII only (``\\uXXXX`` escapes), no NaN.

    Raises ValueError for NaN or infinite floats, TypeError for values JSON cannot hold.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The export signing key at ``path``; a new one is generated if the file does not exist.

    A new key is written with mode 0600 (through a temporary file linked into place, so two processes creating it
    at once end up with the same key); a missing parent folder is created with mode 0700.

    Raises:
        KeyFileError: the existing file is readable or writable by every user (it must be chmod 600), cannot be
            read, or is not an unencrypted Ed25519 private key in PEM.
    """
    path = Path(path)
    if not path.exists():
        _create_key(path)
    return _load_private_key(path)


def _create_key(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)  # mkdir's mode is cut by the umask
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            log.info("export signing key created: %s (fingerprint %s)", path,
                     public_key_fingerprint(_load_private_key(path)))
        except FileExistsError:
            log.info("export signing key %s was created by another process meanwhile; using it", path)
    finally:
        os.unlink(tmp)


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IROTH | stat.S_IWOTH):
            raise KeyFileError(f"signing key {path} is accessible to every user (mode {stat.S_IMODE(mode):04o}); "
                               f"refusing to use it: restrict it with `chmod 600 {path}` (and consider replacing "
                               "it, as it may have been copied)")
        data = path.read_bytes()
    except OSError as err:
        raise KeyFileError(f"cannot read signing key {path}: {err}") from err
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"signing key {path} is not an unencrypted PEM private key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"signing key {path} is a {type(key).__name__}, expected an Ed25519 private key")
    if mode & stat.S_IRGRP:
        log.warning("signing key %s is readable by its group (mode %04o); chmod 600 is advised", path,
                    stat.S_IMODE(mode))
    return key


def public_key_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of the public half of ``key``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public half of ``key`` as a SubjectPublicKeyInfo PEM (what ``openssl pkeyutl -pubin`` reads)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    """``sha256:<64 hex digits>``: the SHA-256 of the raw 32-byte public key (of a private key: its public half).

    Raises ValueError for raw bytes that are not 32 long.
    """
    raw = key if isinstance(key, bytes) else public_key_raw(key)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def load_public_key(path: Path) -> bytes:
    """The raw 32-byte Ed25519 public key in ``path``: a public key PEM, a private key PEM (its public half), the
    32 raw bytes, or those bytes in base64 or hex on one line.

    Raises:
        KeyFileError: unreadable, or none of those forms.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise KeyFileError(f"cannot read public key {path}: {err}") from err
    if b"-----BEGIN" in data:
        return _pem_public(path, data)
    if len(data) == PUBLIC_KEY_BYTES:
        return data
    text = data.strip()
    for decode in (lambda t: base64.b64decode(t, validate=True), binascii.unhexlify):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == PUBLIC_KEY_BYTES:
            return raw
    raise KeyFileError(f"{path} holds no Ed25519 public key: expected a PEM key, 32 raw bytes, or 32 bytes in "
                       "base64 or hex")


def _pem_public(path: Path, data: bytes) -> bytes:
    try:
        if b"PRIVATE KEY" in data:
            key: Any = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise KeyFileError(f"{path} is not a readable PEM key: {err}") from err
    if not isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, expected an Ed25519 key")
    return public_key_raw(key)
