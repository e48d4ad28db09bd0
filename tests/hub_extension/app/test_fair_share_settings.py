"""A phase's max_concurrent_submissions through the phase form: saved as uploads are read, shown on the phase."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub_extension import models as m
from tests.support.builders import ANN, ORGANIZER, build_world


@pytest.fixture
def world(platform, tmp_path):
    return build_world(platform, tmp_path)


def test_the_limit_is_set_by_the_phase_form_and_checked_as_a_bundle_would_be(platform, world):
    edit = platform.save_phase(world.slug, 1, {"max_concurrent_submissions": "2"}, ORGANIZER)
    assert edit.saved, edit.problems
    assert platform.editable_spec(world.slug, ORGANIZER).phases[0].max_concurrent_submissions == 2
    with platform.db.session() as s:
        limits = set(s.scalars(select(m.Phase.max_concurrent_submissions)
                               .join(m.Competition).where(m.Competition.slug == world.slug)))
    assert 2 in limits
    phase = platform.competition_detail(world.slug, ANN)["phases"][0]
    assert phase["max_concurrent_submissions"] == 2

    refused = platform.save_phase(world.slug, 1, {"max_concurrent_submissions": "0"}, ORGANIZER)
    assert not refused.saved
    assert any("max_concurrent_submissions: must be at least 1, got 0" in p for p in refused.problems), \
        refused.problems
    assert platform.editable_spec(world.slug, ORGANIZER).phases[0].max_concurrent_submissions == 2
