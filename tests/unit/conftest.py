"""Fixtures of the unit tests that work on a database: the sandbox seeded, and its account."""

from __future__ import annotations

import pytest

from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services


@pytest.fixture(scope="module")
def services(database_url):
    """A process's services on this module's database, the sandbox seeded (SANDBOX_USER's credential)."""
    svc = make_services(database_url)
    seed_sandbox(svc, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    yield svc
    svc.engine.dispose()


@pytest.fixture(scope="module")
def account(services):
    return services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
