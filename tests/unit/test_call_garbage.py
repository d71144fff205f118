"""A SaveLearnerActivity call leaves nothing for the cyclic garbage collector: every object it made,
both XML documents included, is freed when the call ends (spyne's contexts point back at each other
and its event manager built a self-referencing set per event; pars-ws unlinks and avoids them).
A fault's exception still holds its traceback's frames, as Python's exceptions do: that is left to
the collector, on a path that is not the usual one."""
from __future__ import annotations

import gc

import pytest

from pars_ws.entrypoints.wsgi import create_app
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, make_services
from tests.support import record, soap11_save, soap_call


@pytest.fixture(scope="module")
def app(database_url):
    services = make_services(database_url)
    seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    yield create_app(services)
    services.engine.dispose()


def test_a_save_leaves_no_cyclic_garbage(app):
    bodies = [soap11_save([record(f"ccid:testprovider.org:garbage-{i}", completed=f"2026-04-{i + 1:02d}T00:00:00")],
                          user=SANDBOX_USER, password=SANDBOX_PASSWORD) for i in range(5)]
    soap_call(app, bodies[0])  # first call: caches filled, statements compiled
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = [soap_call(app, body) for body in bodies[1:]]
        gc.collect()
        left = [type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert statuses == ["200 OK"] * 4
    assert left == []
