"""The alert store's contract (round trip, transitions, purge, audit, migrations) on a real PostgreSQL 15.

The server is a throwaway one (:mod:`pg_server`), started once for the module and stopped at its end, failed
tests included. Each test gets a fresh database on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from analytics.alerts.store import AlertStore, AlertStoreError
from pg_server import PostgresServer
from unit.test_alert_store import FULL, StoreContract

pytestmark = pytest.mark.integration
_DATABASES = itertools.count(1)  # a fresh database name per call, across the module


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except RuntimeError as err:  # the binaries are part of the machine image: their absence is a failure
        pytest.fail(str(err))
    with server:
        yield server


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def new_url(self, pg_server: PostgresServer) -> Callable[[], str]:
        return lambda: pg_server.create_database(f"store_{next(_DATABASES)}")


def test_the_documented_url_form_works(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("analytics")
    assert url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/analytics"
    with AlertStore.open(url) as store:
        store.save_alert(FULL)
    with AlertStore.open(url.replace("postgresql://", "postgresql+psycopg://")) as store:
        assert store.get_alert(FULL.id) == FULL


def test_a_missing_database_fails_naming_the_url(pg_server: PostgresServer) -> None:
    url = f"postgresql://postgres:pw@127.0.0.1:{pg_server.port}/no_such_db"
    with pytest.raises(AlertStoreError, match=r"postgresql://postgres:\*\*\*@127\.0\.0\.1:\d+/no_such_db.*no_such_db"):
        AlertStore.open(url)
