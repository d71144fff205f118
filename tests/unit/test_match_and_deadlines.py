"""GetLearnerMatch's default learner ID type, and deletion deadlines read from the board catalogue:
domain functions, no database."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from pars_ws.adapters.data_files import load_catalogue
from pars_ws.domain.activities import RegisteredLearner
from pars_ws.domain.catalogue import Catalogue
from pars_ws.domain.engine import match
from pars_ws.domain.lookups import MemoryLookups
from pars_ws.domain.records import DOB, ReportedRecord
from tests.conftest import ROOT

CATALOGUE = load_catalogue()
TODAY = dt.date(2026, 6, 15)


@pytest.mark.parametrize("board, learner_id", [("NC", "NC-12345"), ("ABIM", "123456")])
def test_a_learner_id_without_its_type_is_matched_as_the_boards_first_type(board, learner_id):
    known = RegisteredLearner(
        board=board, learner_id=learner_id, first_name="Ada", last_name="Lovelace", dob=DOB(12, 10)
    )
    record = ReportedRecord(
        index=1, board=board, learner_id=learner_id, first_name="Ada", last_name="Lovelace", dob="1815-12-10"
    )
    assert match(record, today=TODAY, catalogue=CATALOGUE, lookups=MemoryLookups(learners=[known])) == []


@pytest.mark.parametrize("id_type", ["NC", "License", "license"])
def test_a_state_board_learner_id_whose_type_names_the_board_is_its_licence_number(id_type):
    """The learner ID's domain names its issuer: NC's own ID is the licence number it issued."""
    known = RegisteredLearner(
        board="NC", learner_id="NC-12345", first_name="Ada", last_name="Lovelace", dob=DOB(12, 10)
    )
    record = ReportedRecord(
        index=1,
        board="NC",
        learner_id_type=id_type,
        learner_id="NC-12345",
        first_name="Ada",
        last_name="Lovelace",
        dob="12/10",
    )
    assert match(record, today=TODAY, catalogue=CATALOGUE, lookups=MemoryLookups(learners=[known])) == []


@pytest.mark.parametrize("id_type", ["TN", "ABIM", "Licence number"])
def test_a_state_board_learner_id_of_another_issuer_is_712(id_type):
    record = ReportedRecord(
        index=1, board="NC", learner_id_type=id_type, learner_id="NC-12345", first_name="Ada", last_name="Lovelace"
    )
    assert 712 in match(record, today=TODAY, catalogue=CATALOGUE, lookups=MemoryLookups())


def test_the_deletion_deadline_comes_from_the_catalogue():
    assert CATALOGUE["ABIM"].last_deletion_day(dt.date(2025, 3, 1)) == dt.date(2025, 12, 31)
    data = json.loads((ROOT / "src" / "pars_ws" / "data" / "boards.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["boards"]["ABIM"]["deletion_deadline"] = "end_of_next_year"
    with pytest.raises(ValueError, match="deletion_deadline"):
        Catalogue.from_dict(broken)
