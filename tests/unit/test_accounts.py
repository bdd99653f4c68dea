"""Console accounts: argon2 hashes, roles, sessions (only a hash stored, expiry, logout), audit, duty time."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.alerts.store import AlertStore
from analytics.console.accounts import AccountError, Accounts, User
from console_support import Clock


@pytest.fixture
def accounts(tmp_path: Path):
    store = AlertStore.open(f"sqlite:///{tmp_path / 'a.db'}")
    yield Accounts(store, clock=Clock(1000.0))
    store.close()


def _rows(accounts: Accounts, table: str) -> list[sa.Row]:
    with accounts.store.reading() as conn:
        return list(conn.exec_driver_sql(f"SELECT * FROM {table}"))


def test_passwords_are_stored_as_argon2id_hashes_only(accounts: Accounts) -> None:
    accounts.create_user("ana", "a-long-password", "operator", by="admin")
    (row,) = _rows(accounts, "users")
    assert row.password_hash.startswith("$argon2id$") and "a-long-password" not in row.password_hash
    assert all("a-long-password" not in str(e.details) for e in accounts.store.audit_entries())
    assert accounts.login("ana", "a-long-password", hours=1) is not None
    assert accounts.login("ana", "A-long-password", hours=1) is None
    assert accounts.login("nobody", "a-long-password", hours=1) is None


@pytest.mark.parametrize("name,password,role,words", [
    ("Ana", "a-long-password", "operator", "invalid username"),
    ("a", "a-long-password", "operator", "invalid username"),
    ("../x", "a-long-password", "operator", "invalid username"),
    ("ana", "short", "operator", "at least 10"),
    ("ana", "a-long-password", "root", "unknown role"),
])
def test_bad_users_are_refused_with_the_reason(accounts: Accounts, name, password, role, words) -> None:
    with pytest.raises(AccountError, match=words):
        accounts.create_user(name, password, role, by="admin")
    assert _rows(accounts, "users") == []


def test_roles_are_ordered() -> None:
    sup = User("s", "supervisor", False, 0.0)
    assert sup.can("operator") and sup.can("supervisor") and not sup.can("admin")
    assert not User("d", "admin", True, 0.0).can("operator")  # disabled: nothing


def test_sessions_expire_end_at_logout_and_at_a_password_change(accounts: Accounts) -> None:
    accounts.create_user("ana", "a-long-password", "operator", by="admin")
    _user, token = accounts.login("ana", "a-long-password", hours=2)
    assert accounts.session_user(token).username == "ana"
    assert accounts.session_user(token + "x") is None
    accounts._clock.now += 2 * 3600
    assert accounts.session_user(token) is None  # expired
    _user, token = accounts.login("ana", "a-long-password", hours=2)
    accounts.logout(token)
    assert accounts.session_user(token) is None
    _user, token = accounts.login("ana", "a-long-password", hours=2)
    accounts.update_user("ana", by="admin", password="another-long-one")
    assert accounts.session_user(token) is None
    actions = [e.action for e in accounts.store.audit_entries()]
    assert actions.count("login") == 3 and "logout" in actions and "user.update" in actions


def test_duty_spans_run_from_login_to_logout_or_last_activity(accounts: Accounts) -> None:
    clock = accounts._clock
    accounts.create_user("ana", "a-long-password", "operator", by="admin")
    accounts.create_user("sup", "a-long-password", "supervisor", by="admin")
    _u, token = accounts.login("ana", "a-long-password", hours=12)
    accounts.login("sup", "a-long-password", hours=12)
    clock.now += 1800
    accounts.session_user(token)  # activity half an hour later
    clock.now += 1800  # then the browser is closed without logging out
    assert accounts.duty() == [("ana", 1000.0, 2800.0)]
    assert accounts.duty(since=1500.0) == [("ana", 1500.0, 2800.0)]
    assert [u for u, *_ in accounts.duty(role="supervisor")] == []  # no activity after login: zero length
