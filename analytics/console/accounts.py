"""Console accounts: users with roles, argon2 password hashes, login sessions, all audited.

Roles are ordered: ``police`` < ``operator`` < ``supervisor`` < ``admin``; a role may do everything the roles
below it may, except that what a ``police`` account sees is limited to its relay grants. Operators watch live
video and handle alerts; supervisors also review verdicts, place legal holds, watch recordings, handle
requisitions and audit; admins also manage users, relay grants and rule settings.

Passwords are hashed with argon2id (``argon2-cffi``'s defaults); the plain password is never stored or logged.
A session is a random 256-bit token held in the browser's cookie; the store keeps only its SHA-256, so a copy
of the database does not give a working session. Every login (and failed attempt), logout and user change is
written to the store's append-only audit log.

The wall clock is injected (``clock``), so session expiry is testable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from analytics.alerts.store import AlertStore
from analytics.alerts.store_schema import sessions, users

#: Ordered: each role may do what the ones before it may. ``police`` is an outside account (a police station)
#: that sees only the cameras an admin granted it, during the granted window (:mod:`analytics.recording.index`).
ROLES: tuple[str, ...] = ("police", "operator", "supervisor", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
#: Refresh a session's last_seen at most this often (seconds): it dates operator-hours, not every request.
_TOUCH_EVERY = 30.0

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """A user change that cannot be made (the message says why)."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    disabled: bool
    created_at: float

    def can(self, role: str) -> bool:
        """True when this user's role is ``role`` or above it."""
        return not self.disabled and _RANK[self.role] >= _RANK[role]


def check_role(role: str) -> str:
    if role not in _RANK:
        raise AccountError(f"unknown role {role!r}; expected one of {ROLES}")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 256:
        raise AccountError("a password has at most 256 characters")
    return password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _user(row: sa.Row) -> User:
    return User(username=row.username, role=row.role, disabled=bool(row.disabled), created_at=row.created_at)


class Accounts:
    """Users and sessions in the alert store's database.

    Args:
        store: an open :class:`~analytics.alerts.store.AlertStore` (schema version 3 or later).
        clock: wall-clock source (Unix seconds).
        hasher: the argon2 hasher; the default uses argon2-cffi's recommended cost (tests pass a cheaper one;
            a stored hash records its own parameters, so any hasher verifies it).
    """

    def __init__(self, store: AlertStore, *, clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self._clock = clock
        self._hasher = hasher or _hasher

    # -- users -------------------------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str, *, by: str) -> User:
        """Add a user; ``by`` is who does it (audited). Raises AccountError on a bad name, role, password or a
        name already taken."""
        if not isinstance(username, str) or not USERNAME_RE.match(username):
            raise AccountError(f"invalid username {username!r}: 2-32 characters, lower-case letters, digits, "
                               "'_', '.', '-', starting with a letter or digit")
        check_role(role)
        hashed = self._hasher.hash(check_password(password))
        now = self._clock()
        with self.store.writing() as conn:
            if conn.execute(sa.select(users.c.username).where(users.c.username == username)).first() is not None:
                raise AccountError(f"user {username!r} already exists")
            conn.execute(sa.insert(users).values(username=username, password_hash=hashed, role=role, disabled=False,
                                                 created_at=now, updated_at=now))
            self.store.audit_in(conn, by, "user.create", username, {"role": role}, at=now)
        return User(username=username, role=role, disabled=False, created_at=now)

    def update_user(self, username: str, *, by: str, role: str | None = None, password: str | None = None,
                    disabled: bool | None = None) -> User:
        """Change a user's role, password or disabled flag (audited, the password never written to the log).
        Disabling a user or changing their password ends their sessions. Raises KeyError for an unknown user,
        AccountError for a bad value or for removing the last active admin."""
        values: dict[str, object] = {}
        if role is not None:
            values["role"] = check_role(role)
        if password is not None:
            values["password_hash"] = self._hasher.hash(check_password(password))
        if disabled is not None:
            values["disabled"] = bool(disabled)
        now = self._clock()
        with self.store.writing() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                raise KeyError(f"no user {username!r}")
            demoted = (role is not None and role != "admin") or bool(disabled)
            if row.role == "admin" and not row.disabled and demoted:
                admins = conn.execute(sa.select(sa.func.count()).select_from(users).where(
                    users.c.role == "admin", users.c.disabled.is_(False))).scalar_one()
                if admins <= 1:
                    raise AccountError(f"{username!r} is the last active admin; make another admin first")
            if not values:
                return _user(row)
            conn.execute(sa.update(users).where(users.c.username == username).values(**values, updated_at=now))
            if password is not None or disabled:
                conn.execute(sa.update(sessions).where(sessions.c.username == username,
                                                       sessions.c.ended_at.is_(None)).values(ended_at=now))
            details = {k: v for k, v in (("role", role), ("disabled", disabled)) if v is not None}
            if password is not None:
                details["password"] = "changed"
            self.store.audit_in(conn, by, "user.update", username, details, at=now)
            row = conn.execute(sa.select(users).where(users.c.username == username)).one()
        return _user(row)

    def list_users(self) -> list[User]:
        with self.store.reading() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.username))]

    def count(self) -> int:
        with self.store.reading() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    # -- sessions ----------------------------------------------------------------------------------------------

    def login(self, username: str, password: str, *, hours: float, client: str = "") -> tuple[User, str] | None:
        """Check a password and open a session: ``(user, token)``, or None (wrong name or password, disabled
        user). Both outcomes are audited (``login`` / ``login.failed``)."""
        with self.store.reading() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        try:
            self._hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
            ok = row is not None and not row.disabled
        except (VerificationError, InvalidHashError):
            ok = False
        now = self._clock()
        if not ok:
            self.store.audit(str(username)[:64], "login.failed", str(username)[:64], {"client": client}, at=now)
            return None
        token = secrets.token_urlsafe(32)
        with self.store.writing() as conn:
            conn.execute(sa.insert(sessions).values(token_hash=_token_hash(token), username=row.username,
                                                    created_at=now, expires_at=now + hours * 3600.0, last_seen=now))
            self.store.audit_in(conn, row.username, "login", row.username, {"client": client}, at=now)
        return _user(row), token

    def session_user(self, token: str | None) -> User | None:
        """The user of a live session token, or None (unknown, ended, expired, or the user disabled)."""
        if not token:
            return None
        now = self._clock()
        digest = _token_hash(token)
        query = (sa.select(users, sessions.c.last_seen, sessions.c.expires_at, sessions.c.ended_at)
                 .join(sessions, sessions.c.username == users.c.username)
                 .where(sessions.c.token_hash == digest))
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is None or row.ended_at is not None or row.expires_at <= now or row.disabled:
            return None
        if now - row.last_seen >= _TOUCH_EVERY:
            with self.store.writing() as conn:
                conn.execute(sa.update(sessions).where(sessions.c.token_hash == digest).values(last_seen=now))
        return _user(row)

    def logout(self, token: str | None) -> None:
        """End a session (audited); unknown tokens are ignored."""
        if not token:
            return
        now = self._clock()
        with self.store.writing() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.token_hash == _token_hash(token))).first()
            if row is None or row.ended_at is not None:
                return
            conn.execute(sa.update(sessions).where(sessions.c.token_hash == row.token_hash).values(ended_at=now,
                                                                                                  last_seen=now))
            self.store.audit_in(conn, row.username, "logout", row.username, {}, at=now)

    def duty(self, *, role: str = "operator", since: float | None = None,
             until: float | None = None) -> list[tuple[str, float, float]]:
        """``(user, start, end)`` of the sessions of users with exactly ``role``: a session counts from login
        to logout, or to its last activity when it was never closed (expired, browser closed); clipped to
        ``[since, until)``. This is the operator time behind "alerts per operator-hour"."""
        query = (sa.select(sessions.c.username, sessions.c.created_at, sessions.c.last_seen, sessions.c.ended_at)
                 .join(users, users.c.username == sessions.c.username).where(users.c.role == role)
                 .order_by(sessions.c.created_at))
        with self.store.reading() as conn:
            rows = conn.execute(query).all()
        spans = []
        for r in rows:
            start, end = r.created_at, r.ended_at if r.ended_at is not None else r.last_seen
            if since is not None:
                start = max(start, since)
            if until is not None:
                end = min(end, until)
            if end > start:
                spans.append((r.username, start, end))
        return spans
