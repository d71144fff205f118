"""What storage gives the rules (LearnerRepository.lookups_for: a few statements, aggregates for what
learners hold) answers every question the rules ask exactly as lookups holding the whole registry and
every live record would: records kept under a registry learner's ID are found for a learner reported
by NPI or matched on name."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from pars_ws.adapters import tables as t
from pars_ws.adapters.data_files import learner_from_dict, sandbox_fixture
from pars_ws.adapters.learner_store import record_from_row
from pars_ws.domain.activities import RegisteredLearner
from pars_ws.domain.engine import judge, learner_key
from pars_ws.domain.lookups import MemoryLookups
from pars_ws.domain.records import DOB, ReportedRecord, Source, Status
from pars_ws.service.sandbox import seed_sandbox
from tests.conftest import SANDBOX_PASSWORD, SANDBOX_USER, TODAY, make_services

NOW = dt.datetime(2026, 6, 15, 9, tzinfo=dt.timezone.utc)
ME_MD = dict(board="ME-MD", activity_id="200930054", credit_types=("AMA PRA Category 1",))
ABS = dict(board="ABS", activity_id="200900001", credit_types=("ABS Continuous Certification",))
ABIM = dict(board="ABIM", activity_id="200900001", credit_types=("ABIM MOC Part II",))


def rec(credit_id: str, action: str = "Add", **fields) -> ReportedRecord:
    values = dict(completion_date="03/02/2026", credits="1", action=action, credit_id=credit_id)
    values.update(fields)
    return ReportedRecord(index=1, **values)


# Stored first, each under the registry learner's ID, with the registration's maximum points: a
# learner found holding it is refused more (710).
STORED = [
    rec(
        "look-license",
        **ME_MD,
        credits="500",
        learner_id_type="License",
        learner_id="MD9966",
        first_name="Traci",
        last_name="Tester",
        dob="11/10",
    ),
    rec("look-name", **ABS, credits="100", first_name="José", last_name="Núñez", dob="12/24"),
    rec(
        "look-id",
        **ABIM,
        credits="100",
        learner_id_type="ABIM",
        learner_id="1000106",
        first_name="Test2",
        last_name="Account2",
        dob="03/01",
    ),
    rec(
        "look-deleted",
        **ME_MD,
        learner_id_type="License",
        learner_id="999993",
        first_name="Traci",
        last_name="Test",
        dob="07/01",
    ),  # deleted next (a Submitted record could not be)
]
# Then asked about: the same learners and completions, named another way.
PROBES = [
    rec(
        "probe-npi",
        **ME_MD,
        learner_id_type="NPI",
        learner_id=" 1234567893 ",
        first_name="Traci",
        last_name="Tester",
        dob="11/10",
    ),
    rec("probe-name", **ABS, first_name=" jose ", last_name="NUNEZ", dob="12/24"),
    rec(
        "probe-id",
        **ABIM,
        learner_id_type="ABIM",
        learner_id=" 1000106",
        first_name="Test2",
        last_name="Account2",
        dob="03/01",
    ),
    rec(
        "probe-deleted",
        **ME_MD,
        learner_id_type="NPI",
        learner_id="1245319599",
        first_name="Traci",
        last_name="Test",
        dob="07/01",
    ),
    rec("look-id", action="Delete"),
    rec(None, action="Delete", **ME_MD, learner_id_type="NPI", learner_id="1234567893"),
]
HELD = {  # (board, activity, the registry learner's ID): the CreditIDs the rules must see held
    ("ME-MD", "200930054", "MD9966"): {"look-license"},
    ("ABS", "200900001", "5550003"): {"look-name"},
    ("ABIM", "200900001", "1000106"): {"look-id"},
    ("ME-MD", "200930054", "999993"): set(),  # deleted since
}


@pytest.fixture(scope="module")
def world(database_url):
    services = make_services(database_url)
    seed_sandbox(services, username=SANDBOX_USER, password=SANDBOX_PASSWORD)
    account = services.auth.authenticate(SANDBOX_USER, SANDBOX_PASSWORD)
    judgements = services.learners.save(account, STORED, source=Source.SOAP, raw=b"<test/>", correlation_id="look")
    assert all(j.ok for j in judgements), [j.codes for j in judgements]
    deleted = services.learners.save(
        account,
        [rec("look-deleted", action="Delete")],
        source=Source.SOAP,
        raw=b"<test/>",
        correlation_id="look-delete",
    )
    assert [j.status for j in deleted] == [Status.DELETED]
    yield services, account
    services.engine.dispose()


def _everything(services, account) -> MemoryLookups:
    """The whole registry of the environment and every live record of the provider."""
    fixture = sandbox_fixture()
    lr = t.learner_records
    with services.store.transaction(write=False) as uow:
        activities = uow.learners.activities(
            account.environment, account.provider_pk, [a["activity_id"] for a in fixture["activities"]]
        )
    with services.engine.begin() as conn:
        rows = conn.execute(
            select(lr).where(lr.c.environment == account.environment, lr.c.provider_pk == account.provider_pk)
        ).all()
    year = dt.date.fromisoformat(TODAY).year
    return MemoryLookups(
        activities,
        [learner_from_dict(x, year) for x in fixture["registry"]],
        [record_from_row(r) for r in rows if r.deleted_at is None],
    )


def _stored(services, account, records) -> MemoryLookups:
    with services.store.transaction(write=False) as uow:
        return uow.learners.lookups_for(
            account.environment,
            account.provider_pk,
            records,
            services.catalogue,
            uow.learners.reference_for(account.environment, account.provider_pk, records, services.catalogue),
        )


@pytest.mark.parametrize("key, held", sorted(HELD.items()))
def test_points_held_are_found_however_the_learner_is_named(world, key, held):
    services, account = world
    board, activity_id, learner_id = key
    expected = sum((Decimal(r.credits) for r in STORED if r.credit_id in held), Decimal(0))
    args = (board, activity_id, learner_key(learner_id))
    assert _stored(services, account, PROBES).points_held(*args) == expected
    assert _everything(services, account).points_held(*args) == expected


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.credit_id or "delete-by-fields")
def test_each_probe_is_judged_as_with_the_whole_registry_and_every_record(world, probe):
    services, account = world
    today = dt.date.fromisoformat(TODAY)

    def outcome(lookups):
        (j,) = judge([probe], today=today, now=NOW, catalogue=services.catalogue, lookups=lookups, source=Source.SOAP)
        return j.status, j.codes, j.stored.credit_id if j.stored else None

    expected = outcome(_everything(services, account))
    assert outcome(_stored(services, account, [probe])) == expected
    assert outcome(_stored(services, account, PROBES)) == expected  # asked among others
    if probe.credit_id in ("probe-npi", "probe-name", "probe-id"):
        assert 710 in expected[1]  # found holding the maximum


def test_the_registry_learners_asked_for_come_with_their_completions(world):
    services, account = world
    probe = rec("probe-done", board="ABIM", activity_id="200900001", learner_id_type="ABIM", learner_id="1000111")
    stored = _stored(services, account, [probe])
    learner = stored.registered_learner("ABIM", "ABIM", "1000111")
    everything = _everything(services, account).registered_learner("ABIM", "ABIM", "1000111").completions
    # Only those of the activities asked about: the rest cannot matter to the request.
    assert learner is not None and learner.completions == {c for c in everything if c[0] == "200900001"} != set()
    assert stored.registered_learner("ABIM", "ABIM", "1000106") is None  # not asked for


def test_an_npi_imported_unfolded_is_found_folded(world):
    """Import folds a registry NPI, as the lookups compare it: one sent with spaces and capitals
    still matches a learner reporting it in any case."""
    services, account = world
    with services.store.transaction() as uow:
        uow.learners.import_learners(
            account.environment,
            [
                RegisteredLearner(
                    board="ME-MD",
                    learner_id="MD7001",
                    first_name="Ada",
                    last_name="Npi",
                    dob=DOB(5, 5),
                    npi=" X234567893 ",
                )
            ],
        )
    probe = rec(
        "probe-folded",
        **ME_MD,
        learner_id_type="NPI",
        learner_id="x234567893",
        first_name="Ada",
        last_name="Npi",
        dob="05/05",
    )
    learner = _stored(services, account, [probe]).registered_learner("ME-MD", "NPI", "X234567893")
    assert learner is not None and learner.learner_id == "MD7001" and learner.npi == "x234567893"
