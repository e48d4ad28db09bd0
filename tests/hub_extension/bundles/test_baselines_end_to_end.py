"""A Codabench bundle's solutions run as baselines on the docker executor, scored as the bundle's own scoring
program scores them by hand, and shown as baselines on the leaderboard."""
from __future__ import annotations

import pytest

from hub_extension import models as m
from hub_extension.app import Actor

from tests.hub_extension.bundles.test_bundles_end_to_end import NOW, Stack, codabench_expected
from tests.support.paths import BUNDLE_FIXTURES

BUNDLE = BUNDLE_FIXTURES / "solutions_codabench"
OLGA = Actor("olga", groups=frozenset({"organizers"}))


@pytest.fixture
def stack(tmp_path, runtime_image):
    s = Stack(tmp_path / "home")
    yield s
    s.close()


def test_baselines_score_as_their_scoring_program_and_stand_on_the_board(stack, tmp_path):
    slug, _ = stack.platform.create_competition(BUNDLE, OLGA)
    done = stack.platform.run_baselines(slug, 1, OLGA, now=NOW)
    assert [s["name"] for s in done["submissions"]] == ["Always circle", "Careful"]
    # Both wait together: the dispatcher sends them at once (its ticks send whatever waits).
    assert sorted(stack.dispatcher.dispatch_pending()) == sorted(e["id"] for e in done["submissions"])
    infos = [stack.dispatcher.wait(entry["id"], 300) for entry in done["submissions"]]
    for info, folder in zip(infos, ("baselines/constant", "solution")):
        assert info["status"] == m.FINISHED, info["error"]
        want = codabench_expected(BUNDLE, BUNDLE / folder, tmp_path / folder.replace("/", "-"))
        assert info["scores"] == pytest.approx(want)
    assert [i["scores"]["accuracy"] for i in infos] == pytest.approx([0.25, 0.75])

    board = stack.platform.leaderboard_view(slug, 1, actor=Actor("ann"), now=NOW)
    assert [(r["rank"], r["participant"], r["baseline"], r["solution"], r["scores"]["accuracy"])
            for r in board["rows"]] == [(1, "olga", True, "Careful", pytest.approx(0.75)),
                                        (2, "olga", True, "Always circle", pytest.approx(0.25))]
