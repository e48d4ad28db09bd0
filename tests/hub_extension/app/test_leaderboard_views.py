"""What each viewer sees of a leaderboard through the application layer."""
from __future__ import annotations

from hub_extension.app import LOCAL_ADMIN, Actor
from hub_extension.bundles.model import ColumnSpec

from tests.support.builders import results_zip, simple_spec


def _competition(platform, tmp_path, **phase):
    spec = simple_spec(**phase)
    spec.leaderboards[0].columns.append(ColumnSpec(key="secret", title="Secret", index=1, hidden=True))
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    sub = results_zip(tmp_path)
    ids = {}
    for user, acc in (("ann", 0.7), ("ben", 0.8), ("cat", None)):
        platform.register(slug, user, LOCAL_ADMIN)
        ids[user] = platform.submit(slug, sub, username=user)
        if acc is None:
            platform.runs.set_status(ids[user], "Failed", error="scoring failed")
        else:
            platform.runs.record_scores(ids[user], {"accuracy": acc, "secret": 1 - acc})
    return slug, ids


def test_participant_does_not_see_hidden_columns(platform, tmp_path):
    slug, _ = _competition(platform, tmp_path)
    as_ann = platform.leaderboard(slug, actor=Actor("ann"))
    assert [c["key"] for c in as_ann["columns"]] == ["accuracy"]
    assert all("secret" not in r["scores"] for r in as_ann["rows"])
    assert [r["participant"] for r in as_ann["rows"]] == ["ben", "ann"]  # the failed one is not ranked

    as_admin = platform.leaderboard(slug, actor=LOCAL_ADMIN)
    assert [c["key"] for c in as_admin["columns"]] == ["accuracy", "secret"]
    assert as_admin["rows"][0]["scores"]["secret"] == 1 - 0.8


def test_blind_phase_hides_rows_from_participants_only(platform, tmp_path):
    slug, _ = _competition(platform, tmp_path, hide_results=True)
    assert platform.leaderboard(slug, actor=Actor("ann"))["rows"] == []
    assert len(platform.leaderboard(slug, actor=LOCAL_ADMIN)["rows"]) == 2


def test_only_this_competitions_organizers_see_hidden_columns(platform, tmp_path):
    slug, _ = _competition(platform, tmp_path)
    with platform.db.session() as s:
        from hub_extension import models as m

        s.query(m.Competition).filter_by(slug=slug).one().admin_names = ["olga"]
    olga = Actor("olga", groups=frozenset({"organizers"}))
    other = Actor("oscar", groups=frozenset({"organizers"}))
    assert [c["key"] for c in platform.leaderboard(slug, actor=olga)["columns"]] == ["accuracy", "secret"]
    assert [c["key"] for c in platform.leaderboard(slug, actor=other)["columns"]] == ["accuracy"]


def test_no_view_of_a_participant_holds_hidden_values(platform, tmp_path):
    """Leaderboard, CSV, score history and their own submissions: the hidden score is nowhere."""
    import json

    spec = simple_spec()
    spec.leaderboards[0].columns.append(ColumnSpec(key="secret", title="Secret", index=1, hidden=True))
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    secrets = {"ann": 1234.5678, "ben": 8765.4321}
    for user, secret in secrets.items():
        platform.register(slug, user, LOCAL_ADMIN)
        sid = platform.submit(slug, results_zip(tmp_path), username=user)
        platform.runs.record_scores(sid, {"accuracy": 0.5, "secret": secret})
    ann = Actor("ann")
    seen = json.dumps([
        platform.leaderboard(slug, actor=ann),
        platform.leaderboard_view(slug, actor=ann),
        platform.best_score_history(slug, None, None, ann),
        platform.submissions_view(slug, ann),
    ], default=str) + platform.leaderboard_csv(slug, actor=ann)
    for secret in secrets.values():
        assert str(secret) not in seen
    assert "secret" not in seen.lower()
    # The organizer's CSV has them, so the check above can fail.
    organizer_csv = platform.leaderboard_csv(slug, actor=LOCAL_ADMIN)
    assert all(repr(secret) in organizer_csv for secret in secrets.values())
