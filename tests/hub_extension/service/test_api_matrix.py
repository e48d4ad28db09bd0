"""The authorization matrix of the REST API, against the real hub.

Seven people, each with a token from the real JupyterHub (or none): anonymous,
a participant not registered, a registered participant (who owns the
submission in the routes), another registered participant, the organizer of
another competition (in the hub group `organizers`), the competition's
organizer, and a hub admin.  Every API route is called by each of them and
must answer the status written in the table.  Requests go through the proxy,
as a browser's or a script's would.

Unsafe requests carried by the service cookie (after the hub's login page and
OAuth) without the XSRF token must get 403, on every unsafe route.

Scopes decide roles: two more callers hold tokens of the organizer and of the
hub admin that the hub itself down-scoped to `access:services!service=competitions`
(POST /hub/api/users/{name}/tokens with `scopes`).  On every route they must
get exactly what the unregistered person gets: a participant's rights.
"""
from __future__ import annotations

import io
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

from hub_extension.demo import DEMO_BUNDLE
from hub_extension.service.api import api_routes
from tests.support.hub import SERVICE_PREFIX

pytestmark = pytest.mark.slow

ACTORS = ("anonymous", "unregistered", "participant", "other_participant", "other_organizer", "organizer", "admin")
# Tokens of the organizer and of the admin holding only the scope to call the service.
SCOPED_ACTORS = {"scoped_organizer": "organizer", "scoped_admin": "admin"}
ACCESS_ONLY = ["access:services!service=competitions"]
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
    "0001ff5a6c2f8d0000000049454e44ae426082"
)


def matrix_bundle(tmp: Path, title: str) -> bytes:
    """The demo competition plus what the matrix needs: a logo, a hidden column and board,
    a second phase, and a scoring program that writes detailed results."""
    root = tmp / f"bundle-{uuid.uuid4().hex[:6]}"
    shutil.copytree(DEMO_BUNDLE, root)
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    doc["title"] = title
    doc["image"] = "logo.png"
    (root / "logo.png").write_bytes(PNG)
    doc["phases"].append({"index": 1, "name": "Final", "start": "1-1-2100", "end": "1-1-2101", "tasks": [0],
                          "max_submissions": 5, "max_submissions_per_day": 5})
    doc["leaderboards"][0]["columns"][1]["hidden"] = True
    doc["allow_teams"] = True
    doc["leaderboards"].append({"title": "Private", "key": "private", "hidden": True, "submission_rule": "Force_Last",
                                "columns": [{"title": "Accuracy", "key": "accuracy", "index": 0}]})
    (root / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    score = root / "scoring_program" / "score.py"
    score.write_text(score.read_text().replace(
        'if __name__ == "__main__":\n    main(sys.argv[1], sys.argv[2])',
        'if __name__ == "__main__":\n    main(sys.argv[1], sys.argv[2])\n'
        '    print("scoring done")\n'
        '    with open(os.path.join(sys.argv[2], "detailed_results.html"), "w") as fh:\n'
        '        fh.write("<p>detailed results</p>")\n'))
    return zip_folder(root)


def zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def predictions_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(DEMO_BUNDLE / "sample_submissions" / "petal_rule" / "predictions.csv", "predictions.csv")
    return buf.getvalue()


@dataclass
class Scene:
    hub: Any
    names: dict[str, Optional[str]]
    clients: dict[str, Any]
    slug: str
    submission: int  # finished, owned by "participant"
    queue: str
    tmp: Path
    yaml_text: str


@pytest.fixture(scope="module")
def scene(hub, tmp_path_factory) -> Scene:
    tmp = tmp_path_factory.mktemp("matrix")
    tag = uuid.uuid4().hex[:6]
    names = {
        "anonymous": None,
        "unregistered": hub.create_user(f"nora-{tag}"),
        "participant": hub.create_user(f"ann-{tag}"),
        "other_participant": hub.create_user(f"ben-{tag}"),
        "other_organizer": hub.create_user(f"oscar-{tag}", groups=["organizers"]),
        "organizer": hub.create_user(f"olga-{tag}", groups=["organizers"]),
        # The hub's own admin (the admin service of the tests may not make new admins).
        "admin": hub.demo_accounts("admin")[0].username,
    }
    clients = {actor: hub.client(hub.token_for(name) if name else None) for actor, name in names.items()}
    for actor, owner in SCOPED_ACTORS.items():
        clients[actor] = hub.client(hub.token_for(names[owner], ACCESS_ONLY, note="down-scoped"))
    resp = clients["organizer"].post("api/v1/competitions",
                                     files={"file": ("bundle.zip", matrix_bundle(tmp, f"Matrix {tag}"))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    for actor in ("participant", "other_participant"):
        resp = clients[actor].post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
        assert resp.status_code == 201 and resp.json()["status"] == "approved", resp.text
    resp = clients["participant"].post(f"api/v1/competitions/{slug}/submissions",
                                       files={"file": ("predictions.zip", predictions_zip())})
    assert resp.status_code == 201, resp.text
    submission = resp.json()["id"]
    deadline = time.monotonic() + 180
    while True:
        state = clients["participant"].get(f"api/v1/submissions/{submission}").json()
        if state["terminal"]:
            break
        assert time.monotonic() < deadline, f"submission {submission} still {state['status']}: {state}"
        time.sleep(0.5)
    assert state["status"] == "Finished", (state, hub.log_tail())
    queue = f"q-{tag}"
    resp = clients["organizer"].post("api/v1/queues", json={"name": queue, "competition": slug})
    assert resp.status_code == 201, resp.text
    yaml_text = clients["organizer"].get(f"api/v1/competitions/{slug}/yaml").json()["yaml"]
    return Scene(hub=hub, names=names, clients=clients, slug=slug, submission=submission, queue=queue, tmp=tmp,
                 yaml_text=yaml_text)


@dataclass
class Case:
    method: str
    path: str  # with {slug}, {sid}, {queue}, {other_participant}
    expected: tuple[int, ...]  # one per actor, in the order of ACTORS
    body: Optional[Callable[[Scene, str], dict[str, Any]]] = None
    note: str = ""
    scoped: Optional[int] = None  # what the down-scoped tokens get, when not what the unregistered person gets

    def url(self, scene: Scene) -> str:
        return self.path.format(slug=scene.slug, sid=scene.submission, queue=scene.queue,
                                other_participant=scene.names["other_participant"], message=scene_message(scene))


def scene_message(scene: Scene) -> int:
    """An announcement to the scene's two participants (sent once, by the organizer)."""
    if not hasattr(scene, "message"):
        resp = scene.clients["organizer"].post(f"api/v1/competitions/{scene.slug}/announcements",
                                               json={"subject": "Matrix", "body": "for both participants"})
        assert resp.status_code == 201 and resp.json()["recipients"] == 2, resp.text
        scene.message = resp.json()["id"]
    return scene.message


def upload_bundle(scene: Scene, actor: str) -> dict[str, Any]:
    return {"files": {"file": ("bundle.zip", matrix_bundle(scene.tmp, f"By {actor} {uuid.uuid4().hex[:4]}"))}}


def upload_predictions(scene: Scene, actor: str) -> dict[str, Any]:
    return {"files": {"file": ("predictions.zip", predictions_zip())}}


def new_queue(scene: Scene, actor: str) -> dict[str, Any]:
    return {"json": {"name": f"{actor.replace('_', '-')}-{uuid.uuid4().hex[:6]}"}}


def with_page(scene: Scene, actor: str) -> dict[str, Any]:
    """Make sure the page the editor cases move and remove is there (each allowed caller acts on it)."""
    resp = scene.clients["organizer"].put(f"api/v1/competitions/{scene.slug}/pages/matrix-notes",
                                          json={"title": "Matrix notes", "content": "*notes*"})
    assert resp.status_code == 200, resp.text
    return {}


SPARE_COLUMN = {"key": "matrix_spare", "title": "Spare"}
# The callers allowed to add and remove: a spare is made again only for them, so none is left behind.
EDITORS = ("organizer", "admin")


def without_spare_column(scene: Scene, actor: str) -> dict[str, Any]:
    """The board keeps its columns: the spare an earlier caller added is removed first."""
    scene.clients["organizer"].delete(f"api/v1/competitions/{scene.slug}/leaderboards/main/columns/matrix_spare")
    return {"json": SPARE_COLUMN}


def with_spare_column(scene: Scene, actor: str) -> dict[str, Any]:
    """Make sure the column the removal case removes is there (for the callers allowed to remove it)."""
    if actor in EDITORS:
        resp = scene.clients["organizer"].post(f"api/v1/competitions/{scene.slug}/leaderboards/main/columns",
                                               json=SPARE_COLUMN)
        assert resp.status_code == 200, resp.text
    return {}


def spare_phase_count(scene: Scene) -> int:
    return len(scene.clients["organizer"].get(f"api/v1/competitions/{scene.slug}/phases").json()["items"])


def with_spare_phase_removed(scene: Scene, actor: str) -> dict[str, Any]:
    """The scene keeps its two phases: a spare one left by an earlier case is removed first."""
    while spare_phase_count(scene) > 2:
        resp = scene.clients["organizer"].delete(f"api/v1/competitions/{scene.slug}/phases/3")
        assert resp.status_code == 200, resp.text
    return {"json": {"name": "Spare", "start": "2199-01-01 00:00"}}


def with_spare_phase(scene: Scene, actor: str) -> dict[str, Any]:
    """Make sure phase 3, without submissions, is there for the removal case."""
    if actor in EDITORS and spare_phase_count(scene) < 3:
        body = with_spare_phase_removed(scene, actor)
        resp = scene.clients["organizer"].post(f"api/v1/competitions/{scene.slug}/phases", **body)
        assert resp.status_code == 200, resp.text
    return {}


def scene_folder_zip(scene: Scene, folder: str) -> dict[str, Any]:
    """A folder of the scene's bundle as an upload: the same bytes as stored, so nothing changes for later cases."""
    source = sorted(scene.tmp.glob(f"bundle-*/{folder}"))[0]
    return {"files": {"file": (f"{folder}.zip", zip_folder(source))}}


# -- teams: "participant" owns the scene's team; "other_participant" joins it, submits for it, and leaves ------
class TeamCase(Case):
    """A case whose path names the scene's team (`{team}`), made by `scene_team` when the case runs."""

    def __init__(self, method: str, team_path: str, *args: Any, **kwargs: Any):
        super().__init__(method, team_path.replace("{team}", "1"), *args, **kwargs)
        self.team_path = team_path

    def url(self, scene: Scene) -> str:
        path = self.team_path.replace("{team}", str(scene_team(scene)))
        path = path.replace("{team_sid}", str(TEAM_STATE.get("submission", 0)))
        return path.format(slug=scene.slug, sid=scene.submission, queue=scene.queue,
                           other_participant=scene.names["other_participant"])


TEAM_STATE: dict[str, Any] = {}


def scene_team(scene: Scene) -> int:
    """The team "participant" owns in the scene's competition (made again when an earlier case dissolved it)."""
    teams = scene.clients["participant"].get(f"api/v1/competitions/{scene.slug}/teams").json()
    if teams["my_team"] is not None:
        return teams["my_team"]
    resp = scene.clients["participant"].post(f"api/v1/competitions/{scene.slug}/teams", json={"name": "Matrix team"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def team_invitation(scene: Scene, actor: str) -> dict[str, Any]:
    """"other_participant" holds an invitation to the scene's team when they are the caller."""
    if actor == "other_participant":
        resp = scene.clients["participant"].post(f"api/v1/competitions/{scene.slug}/teams/{scene_team(scene)}/invitations",
                                                 json={"usernames": [scene.names["other_participant"]]})
        assert resp.status_code == 200 and resp.json()["results"][0]["invited"], resp.text
    return {}


def team_submission(scene: Scene, actor: str) -> dict[str, Any]:
    """A submission "other_participant" made for the team (once; its logs' rights are the submission's)."""
    if "submission" not in TEAM_STATE:
        client = scene.clients["other_participant"]
        resp = client.post(f"api/v1/competitions/{scene.slug}/submissions",
                           files={"file": ("predictions.zip", predictions_zip())})
        assert resp.status_code == 201 and resp.json()["team"] == scene_team(scene), resp.text
        TEAM_STATE["submission"] = resp.json()["id"]
    return {}
# -- the forum: a thread the participant opened, with a reply of the other participant -------------------
FORUM: dict[str, int] = {}


def forum_scene(scene: Scene) -> dict[str, int]:
    """The scene's forum thread ({"thread", "first", "reply"}), opened on first use."""
    if "thread" not in FORUM:
        api = f"api/v1/competitions/{scene.slug}/forum"
        opened = scene.clients["participant"].post(f"{api}/threads", json={"title": "Matrix", "body": "*question*"})
        assert opened.status_code == 201, opened.text
        reply = scene.clients["other_participant"].post(f"{api}/threads/{opened.json()['id']}/posts",
                                                        json={"body": "an answer"})
        assert reply.status_code == 201, reply.text
        FORUM.update(thread=opened.json()["id"], first=opened.json()["items"][0]["id"], reply=reply.json()["id"])
    return FORUM


def fresh_forum_thread(scene: Scene, actor: str) -> dict[str, Any]:
    """A thread of the organizer's for this caller to delete (`{fresh}` in the path)."""
    resp = scene.clients["organizer"].post(f"api/v1/competitions/{scene.slug}/forum/threads",
                                           json={"title": f"For {actor} to delete", "body": "x"})
    assert resp.status_code == 201, resp.text
    FORUM["fresh"] = resp.json()["id"]
    return {}


def fresh_forum_post(scene: Scene, actor: str) -> dict[str, Any]:
    """A reply of the organizer's in the scene's thread for this caller to delete (`{fresh}` in the path)."""
    thread = forum_scene(scene)["thread"]
    resp = scene.clients["organizer"].post(f"api/v1/competitions/{scene.slug}/forum/threads/{thread}/posts",
                                           json={"body": f"for {actor} to delete"})
    assert resp.status_code == 201, resp.text
    FORUM["fresh"] = resp.json()["id"]
    return {}


@dataclass
class ForumCase(Case):
    """A case whose path names the scene's forum thread (`{thread}`), its posts (`{first}`, `{reply}`) or one made
    for the caller (`{fresh}`)."""

    def url(self, scene: Scene) -> str:
        return self.path.format(slug=scene.slug, **forum_scene(scene))


PUBLIC = (200,) * 7
#              anon  unreg part other oorg  org  admin
ORGANIZERS = (401, 403, 403, 403, 403, 200, 200)
OWNER = (401, 403, 200, 403, 403, 200, 200)
APPROVED = (401, 403, 200, 200, 403, 200, 200)
LOGGED_IN = (401, 200, 200, 200, 200, 200, 200)

CASES = [
    Case("GET", "api/v1/health", PUBLIC),
    Case("GET", "api/v1/openapi.json", PUBLIC),
    Case("GET", "api/v1/me", LOGGED_IN),
    Case("GET", "api/v1/competitions", PUBLIC),
    Case("POST", "api/v1/competitions", (401, 403, 403, 403, 201, 201, 201), upload_bundle,
         "members of the hub group organizers and admins create competitions"),
    Case("GET", "api/v1/competitions/{slug}", PUBLIC),
    Case("GET", "api/v1/competitions/{slug}/logo", PUBLIC),
    Case("GET", "api/v1/competitions/{slug}/yaml", ORGANIZERS),
    Case("PUT", "api/v1/competitions/{slug}/yaml", ORGANIZERS, lambda s, a: {"json": {"yaml": s.yaml_text}}),
    Case("GET", "api/v1/competitions/{slug}/export", ORGANIZERS),
    Case("GET", "api/v1/competitions/{slug}/phases", PUBLIC),
    Case("POST", "api/v1/competitions/{slug}/phases/1/open", ORGANIZERS, note="phase 1 is open already"),
    Case("POST", "api/v1/competitions/{slug}/phases/2/close", (401, 403, 403, 403, 403, 400, 400),
         note="allowed, but phase 2 has not opened: 400 after the permission check"),
    Case("POST", "api/v1/competitions/{slug}/phases/1/migrate", (401, 403, 403, 403, 403, 409, 409),
         note="allowed, but without the count it was shown: 409 after the permission check"),
    Case("PUT", "api/v1/competitions/{slug}/phases/2/dates", ORGANIZERS,
         lambda s, a: {"json": {"start": "2100-01-01T00:00", "end": "2101-01-01T00:00"}}),
    Case("GET", "api/v1/competitions/{slug}/phases/1/starting_kit", APPROVED),
    Case("GET", "api/v1/competitions/{slug}/phases/1/public_data", APPROVED),
    Case("POST", "api/v1/competitions/{slug}/phases/1/open_in_lab", APPROVED,
         note="the kit goes into the caller's own JupyterLab server, started for them"),
    Case("GET", "api/v1/competitions/{slug}/phases/1/baselines", ORGANIZERS),
    Case("POST", "api/v1/competitions/{slug}/phases/1/baselines", (401, 403, 403, 403, 403, 400, 400),
         note="allowed, but the demo bundle has no solutions: 400 after the permission check"),
    Case("GET", "api/v1/competitions/{slug}/participants", ORGANIZERS),
    Case("PUT", "api/v1/competitions/{slug}/participants/{other_participant}", ORGANIZERS,
         lambda s, a: {"json": {"status": "approved"}}),
    Case("POST", "api/v1/competitions/{slug}/participants/bulk", ORGANIZERS,
         lambda s, a: {"json": {"usernames": [s.names["other_participant"]], "status": "approved"}}),
    Case("PUT", "api/v1/competitions/{slug}/participants/bulk", (401, 403, 403, 403, 403, 404, 404),
         lambda s, a: {"json": {"status": "approved"}},
         "the participant whose user name is 'bulk': allowed, but nobody of that name registered"),
    Case("GET", "api/v1/competitions/{slug}/organizers", ORGANIZERS),
    Case("PUT", "api/v1/competitions/{slug}/organizers", ORGANIZERS, lambda s, a: {"json": {"usernames": []}},
         "the creator and the admins name the co-organizers"),
    Case("GET", "api/v1/competitions/{slug}/submissions", LOGGED_IN, note="each participant sees their own"),
    Case("POST", "api/v1/competitions/{slug}/submissions", (401, 403, 201, 201, 403, 201, 201), upload_predictions,
         "registered participants submit; an organizer's own first submission enters them, so that their "
         "down-scoped tokens then submit as the approved participants they became", scoped=201),
    Case("GET", "api/v1/competitions/{slug}/submissions_left", LOGGED_IN),
    Case("GET", "api/v1/competitions/{slug}/leaderboard", PUBLIC),
    Case("GET", "api/v1/competitions/{slug}/leaderboard.csv", PUBLIC),
    Case("GET", "api/v1/competitions/{slug}/leaderboard/history", PUBLIC),
    Case("GET", "api/v1/submissions/{sid}", OWNER),
    Case("GET", "api/v1/submissions/{sid}/logs/0/scoring/stdout", OWNER),
    Case("GET", "api/v1/submissions/{sid}/artifacts/detailed_results", OWNER),
    Case("GET", "api/v1/submissions/{sid}/file", OWNER),
    Case("POST", "api/v1/submissions/{sid}/rerun", (401, 403, 403, 403, 403, 201, 201)),
    Case("POST", "api/v1/submissions/{sid}/cancel", (401, 403, 400, 403, 403, 400, 400),
         note="allowed for its owner and organizers, but it has finished: 400 after the permission check"),
    Case("PUT", "api/v1/submissions/{sid}/hidden", ORGANIZERS, lambda s, a: {"json": {"hidden": False}}),
    Case("PUT", "api/v1/submissions/{sid}/selected", (401, 403, 400, 403, 403, 400, 400),
         lambda s, a: {"json": {"selected": True}},
         "allowed, but the phase's rule (Force_Last) leaves nothing to choose"),
    Case("GET", "api/v1/queues", LOGGED_IN, note="each sees the queues they manage"),
    Case("POST", "api/v1/queues", (401, 403, 403, 403, 201, 201, 201), new_queue),
    Case("GET", "api/v1/queues/{queue}", ORGANIZERS),
    Case("GET", "api/v1/queues/{queue}/credentials", ORGANIZERS),
    Case("POST", "api/v1/queues/{queue}/rotate", ORGANIZERS),
    Case("GET", "api/v1/admin/storage", (401, 403, 403, 403, 403, 403, 200)),
    Case("GET", "api/v1/competitions/{slug}/statistics", ORGANIZERS),
    Case("GET", "api/v1/admin/statistics", (401, 403, 403, 403, 403, 403, 200)),
    Case("GET", "api/v1/competitions/{slug}/phases/1/migrate", ORGANIZERS),
    Case("GET", "api/v1/competitions/{slug}/phases/1/rerun", ORGANIZERS),
    Case("POST", "api/v1/competitions/{slug}/phases/1/rerun", (401, 403, 403, 403, 403, 409, 409),
         lambda s, a: {"json": {"confirm": 100000}},
         "allowed, but confirmed for a count that is not the phase's: 409 after the permission check"),
    Case("GET", "api/v1/competitions/{slug}/phases/1/submissions.zip", ORGANIZERS),
    Case("GET", "api/v1/submissions/{sid}/bundle.zip", ORGANIZERS),
    Case("DELETE", "api/v1/submissions/{sid}", (401, 403, 400, 403, 403, 400, 400),
         note="allowed for its owner and organizers, but it was rerun above (the rerun keeps it): 400 after "
              "the permission check"),
    Case("GET", "api/v1/competitions/{slug}/spec", ORGANIZERS),
    Case("POST", "api/v1/competitions/{slug}/preview", ORGANIZERS,
         lambda s, a: {"json": {"text": "# Hi", "format": "markdown"}}),
    Case("PUT", "api/v1/competitions/{slug}/overview", ORGANIZERS,
         lambda s, a: {"json": {"registration_auto_approve": True}}),
    Case("PUT", "api/v1/competitions/{slug}/pages/matrix-notes", ORGANIZERS,
         lambda s, a: {"json": {"title": "Matrix notes", "content": "*notes*"}}),
    Case("POST", "api/v1/competitions/{slug}/pages/matrix-notes/up", ORGANIZERS, with_page),
    Case("POST", "api/v1/competitions/{slug}/pages/matrix-notes/down", ORGANIZERS, with_page),
    Case("DELETE", "api/v1/competitions/{slug}/pages/matrix-notes", ORGANIZERS, with_page),
    Case("PUT", "api/v1/competitions/{slug}/leaderboards/main/columns", ORGANIZERS,
         lambda s, a: {"json": {"columns": [{"key": "accuracy", "precision": 3}]}}),
    Case("POST", "api/v1/competitions/{slug}/leaderboards/main/columns", ORGANIZERS, without_spare_column,
         "a column removed again by the next case"),
    Case("DELETE", "api/v1/competitions/{slug}/leaderboards/main/columns/matrix_spare", ORGANIZERS, with_spare_column),
    Case("POST", "api/v1/competitions/{slug}/phases", ORGANIZERS, with_spare_phase_removed,
         "a phase long after the others, removed again by the next case"),
    Case("DELETE", "api/v1/competitions/{slug}/phases/3", ORGANIZERS, with_spare_phase),
    Case("PUT", "api/v1/competitions/{slug}/phases/2/settings", ORGANIZERS,
         lambda s, a: {"json": {"max_submissions": 5}}),
    Case("PUT", "api/v1/competitions/{slug}/tasks/0", ORGANIZERS,
         lambda s, a: {"json": {"name": "Flower species"}}),
    Case("POST", "api/v1/competitions/{slug}/tasks/0/scoring_program", ORGANIZERS,
         lambda s, a: scene_folder_zip(s, "scoring_program"),
         "the same program again: a new version of the same bytes"),
    Case("POST", "api/v1/competitions/{slug}/phases/1/uploads/starting_kit", ORGANIZERS,
         lambda s, a: scene_folder_zip(s, "starting_kit")),
    Case("GET", "api/v1/competitions/{slug}/lifecycle", ORGANIZERS),
    Case("POST", "api/v1/competitions/{slug}/lifecycle", ORGANIZERS, lambda s, a: {"json": {"status": "published"}},
         "published already: it stays so"),
    Case("POST", "api/v1/competitions/{slug}/secret", ORGANIZERS),
    Case("POST", "api/v1/competitions/{slug}/invitations", ORGANIZERS,
         lambda s, a: {"json": {"usernames": [s.names["other_participant"]]}}, "approved already: nothing changes"),
    Case("DELETE", "api/v1/competitions/{slug}", (401, 403, 403, 403, 403, 400, 400),
         lambda s, a: {"json": {"confirm": "not-the-slug"}},
         "allowed, but the typed confirmation is wrong: 400 after the permission check, nothing deleted"),
    TeamCase("GET", "api/v1/competitions/{slug}/teams", PUBLIC),
    TeamCase("GET", "api/v1/competitions/{slug}/teams/{team}", PUBLIC, note="members are public; invitations not"),
    TeamCase("POST", "api/v1/competitions/{slug}/teams", (401, 403, 409, 409, 403, 409, 409),
             lambda s, a: {"json": {"name": "Matrix team"}},
             "approved participants (the organizers, entered by their own submission above) create teams; the owner "
             "is in one already and the name is taken: 409 after the permission check", scoped=409),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/{team}/invitations", (401, 403, 200, 403, 403, 403, 403),
             lambda s, a: {"json": {"usernames": [s.names["other_participant"]]}}, "the owner invites"),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/{team}/decline", (401, 404, 404, 200, 404, 404, 404),
             note="the invitee answers; for anyone else there is no invitation"),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/{team}/accept", (401, 404, 404, 200, 404, 404, 404),
             team_invitation, "the invitee answers (invited again first)"),
    TeamCase("GET", "api/v1/submissions/{team_sid}", (401, 403, 200, 200, 403, 200, 200), team_submission,
             "a submission made for the team: its members and the organizers"),
    TeamCase("GET", "api/v1/submissions/{team_sid}/file", (401, 403, 200, 200, 403, 200, 200), team_submission),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/{team}/link", (401, 403, 200, 403, 403, 403, 403),
             note="the owner shares the link"),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/join", (401, 404, 404, 404, 404, 404, 404),
             lambda s, a: {"json": {"token": "not-a-link"}}, "a token no team has: 404 for everyone"),
    TeamCase("PUT", "api/v1/competitions/{slug}/teams/{team}/owner", (401, 403, 400, 403, 403, 403, 403),
             lambda s, a: {"json": {"username": s.names["participant"]}},
             "the owner hands over, but not to themselves: 400 after the permission check"),
    TeamCase("POST", "api/v1/competitions/{slug}/teams/{team}/leave", (401, 403, 409, 200, 403, 403, 403),
             note="a member leaves; the owner must hand over or dissolve: 409"),
    TeamCase("DELETE", "api/v1/competitions/{slug}/teams/{team}", (401, 403, 200, 403, 403, 200, 200),
             note="the owner or the organizers dissolve (the team is made again for each caller that may)"),
    Case("GET", "api/v1/profile", LOGGED_IN, note="each their own profile"),
    Case("PUT", "api/v1/profile", LOGGED_IN, lambda s, a: {"json": {"affiliation": "Matrix University"}},
         "each sets their own profile"),
    Case("PUT", "api/v1/competitions/{slug}/leaderboards/main/anonymity", ORGANIZERS,
         lambda s, a: {"json": {"anonymous": None}}, "the board follows the competition's setting"),
    ForumCase("GET", "api/v1/competitions/{slug}/forum/threads", PUBLIC,
              note="the forum is read by whoever may see the competition"),
    ForumCase("POST", "api/v1/competitions/{slug}/forum/threads", (401, 403, 201, 201, 403, 201, 201),
              lambda s, a: {"json": {"title": f"By {a}", "body": "**hello**"}},
              "organizers and approved participants post (the organizers and the admin entered by submitting)",
              scoped=201),
    ForumCase("GET", "api/v1/competitions/{slug}/forum/threads/{thread}", PUBLIC),
    ForumCase("PATCH", "api/v1/competitions/{slug}/forum/threads/{thread}", OWNER,
              lambda s, a: {"json": {"title": "Matrix"}}, "its author or an organizer renames a thread"),
    ForumCase("PATCH", "api/v1/competitions/{slug}/forum/threads/{thread}", ORGANIZERS,
              lambda s, a: {"json": {"pinned": True}}, "moderation: organizers only"),
    ForumCase("DELETE", "api/v1/competitions/{slug}/forum/threads/{fresh}", ORGANIZERS, fresh_forum_thread),
    ForumCase("POST", "api/v1/competitions/{slug}/forum/threads/{thread}/posts", (401, 403, 201, 201, 403, 201, 201),
              lambda s, a: {"json": {"body": f"reply of {a}"}}, scoped=201),
    ForumCase("PUT", "api/v1/competitions/{slug}/forum/threads/{thread}/answer", OWNER,
              lambda s, a: {"json": {"post_id": forum_scene(s)["reply"]}}, "the thread's author or an organizer"),
    ForumCase("PATCH", "api/v1/competitions/{slug}/forum/posts/{first}", OWNER,
              lambda s, a: {"json": {"body": "*question*, edited"}}, "its author or an organizer edits a post"),
    ForumCase("DELETE", "api/v1/competitions/{slug}/forum/posts/{fresh}", ORGANIZERS, fresh_forum_post),
    ForumCase("POST", "api/v1/competitions/{slug}/forum/preview", (401, 403, 200, 200, 403, 200, 200),
              lambda s, a: {"json": {"text": "_hi_"}}, "whoever may post", scoped=200),
    Case("POST", "api/v1/competitions/{slug}/announcements", (401, 403, 403, 403, 403, 201, 201),
         lambda s, a: {"json": {"subject": f"Matrix news from {a}", "body": "*hello*"}},
         "organizers send announcements"),
    Case("GET", "api/v1/competitions/{slug}/announcements", APPROVED,
         note="its participants read theirs; organizers all of them; the down-scoped tokens read, as the "
              "approved participants their owners became by submitting above, the ones sent to them",
         scoped=200),
    Case("GET", "api/v1/messages", LOGGED_IN, note="each sees their own messages"),
    Case("GET", "api/v1/messages/{message}", (401, 404, 200, 200, 404, 404, 404),
         note="an announcement to both participants: its recipients only, anyone else 404 (admins too)"),
    Case("GET", "api/v1/me/mail", LOGGED_IN),
    Case("PUT", "api/v1/me/mail", LOGGED_IN, lambda s, a: {"json": {"mail": {"submission_failed": False}}},
         "each sets their own"),
    Case("GET", "api/v1/admin/mail", (401, 403, 403, 403, 403, 403, 200)),
    Case("GET", "api/v1/competitions/{slug}/fact_sheet", PUBLIC),
    Case("PUT", "api/v1/competitions/{slug}/fact_sheet", ORGANIZERS,
         lambda s, a: {"json": {"questions": [{"key": "method", "type": "text", "title": "Method",
                                               "is_on_leaderboard": True}]}}),
    Case("PUT", "api/v1/competitions/{slug}/leaderboards/main/fact_sheet_columns", ORGANIZERS,
         lambda s, a: {"json": {"keys": ["method"]}}, "the question the case above saved"),
    Case("GET", "api/v1/competitions/{slug}/phases/1/fact_sheets.csv", ORGANIZERS),
    Case("GET", "api/v1/competitions/{slug}/similarity", ORGANIZERS),
    Case("GET", "api/v1/competitions/{slug}/similarity/999999", (401, 403, 403, 403, 403, 404, 404),
         note="no such pair: 404 after the permission check"),
    Case("PATCH", "api/v1/competitions/{slug}/similarity/999999", (401, 403, 403, 403, 403, 404, 404),
         lambda s, a: {"json": {"verdict": "copy"}}, "no such pair: 404 after the permission check"),
    Case("PUT", "api/v1/competitions/{slug}/leaderboards/private/probing", ORGANIZERS,
         lambda s, a: {"json": {"display_precision": 3}}, "the organizers round the (hidden) board's shown scores"),
    Case("GET", "api/v1/submissions/{sid}/provenance", ORGANIZERS),
    Case("GET", "api/v1/submissions/{sid}/manifest", ORGANIZERS),
    Case("GET", "api/v1/manifest-key", PUBLIC, note="the public key manifests are signed with: anyone checks one"),
    Case("POST", "api/v1/submissions/{sid}/reproduce", (401, 403, 403, 403, 403, 404, 404),
         lambda s, a: {"json": {"queue": "no-such-queue"}},
         "the phase does not let participants reproduce; organizers name a queue that does not exist: 404 after "
         "the permission check"),
    Case("GET", "api/v1/submissions/{sid}/comparison", (401, 403, 403, 403, 403, 404, 404),
         note="organizers only here (the phase does not allow reproductions); never reproduced: 404"),
    Case("POST", "api/v1/competitions/{slug}/phases/1/reproduce-top", (401, 403, 403, 403, 403, 400, 400),
         lambda s, a: {"json": {"top": 0}}, "allowed, but top must be from 1 to 100: 400 after the permission check"),
    # Last: it registers whoever calls it.
    Case("POST", "api/v1/competitions/{slug}/registration", (401, 201, 201, 201, 201, 400, 400),
         lambda s, a: {"json": {"accept_terms": True}}, "organizers do not register"),
]


def _template(path: str) -> str:
    return path.replace("{slug}", "s").replace("{sid}", "1").replace("{queue}", "q").replace(
        "{other_participant}", "u").replace("{thread}", "1").replace("{first}", "1").replace("{fresh}", "1").replace("{message}", "1")


def test_the_matrix_covers_every_api_route():
    import re

    covered: dict[str, set[str]] = {}
    for case in CASES:
        covered.setdefault(f"{SERVICE_PREFIX}{_template(case.path)}", set()).add(case.method.lower())
    for pattern, handler in api_routes(SERVICE_PREFIX):
        methods = {m for m in ("get", "post", "put", "patch", "delete") if m in vars(handler)}
        matching = {path: ms for path, ms in covered.items() if re.fullmatch(pattern, path)}
        assert matching, f"no case for {pattern}"
        for method in methods:
            assert any(method in ms for ms in matching.values()), f"no {method.upper()} case for {pattern}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.path}" for c in CASES])
def test_authorization_matrix(scene, case):
    failures = []
    # A down-scoped token of the organizer or the admin acts as a participant who is not registered.
    as_unregistered = case.expected[ACTORS.index("unregistered")] if case.scoped is None else case.scoped
    callers = list(zip(ACTORS, case.expected)) + [(actor, as_unregistered) for actor in SCOPED_ACTORS]
    for actor, expected in callers:
        kwargs = case.body(scene, actor) if case.body else {}
        resp = scene.clients[actor].request(case.method, case.url(scene), **kwargs)
        if resp.status_code != expected:
            failures.append(f"{actor}: expected {expected}, got {resp.status_code} {resp.text[:200]}")
            continue
        if expected >= 400:
            body = resp.json()
            assert set(body["error"]) >= {"code", "message"}, body
    assert not failures, f"{case.method} {case.path} ({case.note}):\n" + "\n".join(failures)


def test_participants_see_no_secret_over_the_real_hub(scene):
    part, other = scene.clients["participant"], scene.clients["other_participant"]
    board = part.get(f"api/v1/competitions/{scene.slug}/leaderboard").json()
    assert [c["key"] for c in board["columns"]] == ["accuracy"]  # f1 is hidden
    assert all(set(r["scores"]) == {"accuracy"} for r in board["rows"]) and board["rows"]
    assert part.get(f"api/v1/competitions/{scene.slug}/leaderboard?board=private").json()["rows"] == []
    detail = part.get(f"api/v1/competitions/{scene.slug}").json()
    assert [b["key"] for b in detail["leaderboards"]] == ["main"]
    mine = part.get(f"api/v1/submissions/{scene.submission}").json()
    assert set(mine["scores"]) == {"accuracy"}
    theirs = other.get(f"api/v1/competitions/{scene.slug}/submissions").json()
    assert scene.submission not in [s["id"] for s in theirs["items"]]
    organizer = scene.clients["organizer"].get(f"api/v1/submissions/{scene.submission}").json()
    assert set(organizer["scores"]) == {"accuracy", "f1"}


# -- draft and private competitions: invisible to whoever may not see them -------------------------------
# Every read path of a competition, and what a person who may see it gets (the scene's participants are
# not registered in the hidden competition; an organizer is not either).
HIDDEN_READS = [
    ("GET", "api/v1/competitions/{slug}", 200),
    ("GET", "api/v1/competitions/{slug}/logo", 200),
    ("GET", "api/v1/competitions/{slug}/phases", 200),
    ("GET", "api/v1/competitions/{slug}/leaderboard", 200),
    ("GET", "api/v1/competitions/{slug}/leaderboard.csv", 200),
    ("GET", "api/v1/competitions/{slug}/leaderboard/history", 200),
    ("GET", "api/v1/competitions/{slug}/submissions", 200),
    ("GET", "api/v1/competitions/{slug}/submissions_left", 200),
    ("GET", "api/v1/competitions/{slug}/phases/1/starting_kit", 200),
    ("GET", "api/v1/competitions/{slug}/yaml", 200),
    ("GET", "api/v1/competitions/{slug}/participants", 200),
    ("GET", "api/v1/competitions/{slug}/forum/threads", 200),
]
NEEDS_LOGIN = {"api/v1/competitions/{slug}/submissions", "api/v1/competitions/{slug}/submissions_left"}
NOT_ORGANIZERS = ("anonymous", "unregistered", "participant", "other_organizer", "scoped_organizer", "scoped_admin")


@pytest.fixture(scope="module")
def hidden(scene) -> dict[str, str]:
    """Two more competitions of the scene's organizer: one uploaded as a draft (no `published` key), one
    uploaded with `published: false` and made private; {"draft": slug, "private": slug, "secret": the
    private link's secret}."""
    organizer = scene.clients["organizer"]
    made = {}
    for kind in ("draft", "private"):
        bundle = matrix_bundle(scene.tmp, f"Hidden {kind} {uuid.uuid4().hex[:4]}")
        with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
        doc = yaml.safe_load(files["competition.yaml"])
        doc.pop("published")
        if kind == "private":
            doc["published"] = False
        files["competition.yaml"] = yaml.safe_dump(doc, sort_keys=False).encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        resp = organizer.post("api/v1/competitions", files={"file": ("bundle.zip", buf.getvalue())})
        assert resp.status_code == 201 and resp.json()["lifecycle"] == "draft", resp.text
        made[kind] = resp.json()["slug"]
        # The organizer is told it is a draft, and how to publish it.
        notice = resp.json()["notice"]
        assert notice.startswith("It is a draft: only its organizers see it"), notice
        assert f'POST /services/competitions/api/v1/competitions/{made[kind]}/lifecycle {{"status": "published"}}' \
            in notice, notice
    resp = organizer.post(f"api/v1/competitions/{made['private']}/lifecycle", json={"status": "private"})
    assert resp.status_code == 200 and resp.json()["status"] == "private", resp.text
    made["secret"] = resp.json()["secret"]
    return made


@pytest.mark.parametrize("kind", ["draft", "private"])
@pytest.mark.parametrize("method,path,seen", HIDDEN_READS, ids=[p for _, p, _ in HIDDEN_READS])
def test_draft_and_private_competitions_answer_404_to_whoever_may_not_see_them(scene, hidden, kind, method, path,
                                                                                 seen):
    url = path.format(slug=hidden[kind])
    failures = []
    for actor in NOT_ORGANIZERS:
        expected = 401 if actor == "anonymous" and path in NEEDS_LOGIN else 404
        resp = scene.clients[actor].request(method, url)
        if resp.status_code != expected:
            failures.append(f"{actor}: expected {expected}, got {resp.status_code} {resp.text[:200]}")
        elif expected == 404:
            # Word for word what a competition that does not exist answers.
            missing = scene.clients[actor].request(method, path.format(slug="no-such-competition"))
            assert resp.json()["error"]["message"].replace(hidden[kind], "no-such-competition") == \
                missing.json()["error"]["message"], (actor, resp.text)
    for actor in ("organizer", "admin"):
        resp = scene.clients[actor].request(method, url)
        if resp.status_code != seen:
            failures.append(f"{actor}: expected {seen}, got {resp.status_code} {resp.text[:200]}")
    assert not failures, f"{method} {path} of the {kind} competition:\n" + "\n".join(failures)


@pytest.mark.parametrize("kind", ["draft", "private"])
def test_draft_and_private_competitions_are_listed_to_their_organizers_only(scene, hidden, kind):
    for actor in NOT_ORGANIZERS:
        for query in ("limit=200", f"search={hidden[kind]}"):
            items = scene.clients[actor].get(f"api/v1/competitions?{query}").json()["items"]
            assert hidden[kind] not in [c["slug"] for c in items], (actor, query)
    for actor in ("organizer", "admin"):
        items = scene.clients[actor].get(f"api/v1/competitions?search={hidden[kind]}").json()["items"]
        assert [(c["slug"], c["lifecycle"]) for c in items] == [(hidden[kind], kind)], actor


def test_draft_and_private_competitions_refuse_registration_and_submissions_as_missing(scene, hidden):
    for kind in ("draft", "private"):
        for actor in ("unregistered", "participant", "other_organizer"):
            client = scene.clients[actor]
            resp = client.post(f"api/v1/competitions/{hidden[kind]}/registration", json={"accept_terms": True})
            assert resp.status_code == 404, (kind, actor, resp.text)
            resp = client.post(f"api/v1/competitions/{hidden[kind]}/submissions",
                               files={"file": ("predictions.zip", predictions_zip())})
            assert resp.status_code == 404, (kind, actor, resp.text)
            resp = client.post(f"api/v1/competitions/{hidden[kind]}/lifecycle", json={"status": "published"})
            assert resp.status_code == 404, (kind, actor, resp.text)


def test_a_private_competitions_link_opens_it_and_lets_a_user_register(scene, hidden):
    slug, secret = hidden["private"], hidden["secret"]
    nora = scene.clients["unregistered"]
    assert nora.get(f"api/v1/competitions/{slug}?secret=wrong").status_code == 404
    for path in ("", "/leaderboard", "/leaderboard.csv", "/phases", "/logo"):
        resp = nora.get(f"api/v1/competitions/{slug}{path}?secret={secret}")
        assert resp.status_code == 200, (path, resp.text[:200])
    assert scene.clients["anonymous"].get(f"api/v1/competitions/{slug}?secret={secret}").status_code == 200
    resp = nora.post(f"api/v1/competitions/{slug}/registration?secret={secret}", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    # Registered, the link is no longer needed; the list still does not show it.
    assert nora.get(f"api/v1/competitions/{slug}").json()["registration"] == resp.json()["status"]
    assert slug not in [c["slug"] for c in nora.get("api/v1/competitions?limit=200").json()["items"]]
    # An invitation lets another user in without the link.
    ben = scene.clients["other_participant"]
    assert ben.get(f"api/v1/competitions/{slug}").status_code == 404
    resp = scene.clients["organizer"].post(f"api/v1/competitions/{slug}/invitations",
                                           json={"usernames": [scene.names["other_participant"]]})
    assert resp.status_code == 200 and resp.json()["invited"] == [scene.names["other_participant"]], resp.text
    assert ben.get(f"api/v1/competitions/{slug}").json()["registration"] == "approved"
    # A new link: the old one opens nothing.
    rotated = scene.clients["organizer"].post(f"api/v1/competitions/{slug}/secret").json()["secret"]
    assert rotated != secret
    oscar = scene.clients["other_organizer"]
    assert oscar.get(f"api/v1/competitions/{slug}?secret={secret}").status_code == 404
    assert oscar.get(f"api/v1/competitions/{slug}?secret={rotated}").status_code == 200


# -- XSRF with the service cookie ----------------------------------------------------------------------
UNSAFE = [c for c in CASES if c.method in ("POST", "PUT", "PATCH", "DELETE")]


@pytest.fixture(scope="module")
def cookie_sessions(scene):
    """The organizer and the participant, logged in through the hub's login page and OAuth."""
    sessions = {}
    for actor in ("organizer", "participant"):
        password = uuid.uuid4().hex
        scene.hub.set_password(scene.names[actor], password)
        sessions[actor] = scene.hub.login(scene.names[actor], password)
        assert sessions[actor].xsrf_token(), "the service set no _xsrf cookie"
    return sessions


@pytest.mark.parametrize("case", UNSAFE, ids=[f"{c.method} {c.path}" for c in UNSAFE])
def test_cookie_requests_without_the_xsrf_token_get_403(scene, cookie_sessions, case):
    for actor, session in cookie_sessions.items():
        kwargs = case.body(scene, actor) if case.body else {}
        resp = session.request(case.method, case.url(scene), **kwargs)
        assert resp.status_code == 403, (actor, resp.status_code, resp.text[:300])
        assert resp.json()["error"]["code"] == "xsrf", resp.text


def test_cookie_requests_with_the_xsrf_token_pass(scene, cookie_sessions):
    organizer = cookie_sessions["organizer"]
    assert organizer.get("api/v1/me").json()["name"] == scene.names["organizer"]
    resp = organizer.put(f"api/v1/submissions/{scene.submission}/hidden", json={"hidden": False},
                         headers=organizer.xsrf_headers())
    assert resp.status_code == 200, resp.text
    participant = cookie_sessions["participant"]
    resp = participant.post(f"api/v1/competitions/{scene.slug}/submissions",
                            files={"file": ("predictions.zip", predictions_zip())},
                            headers=participant.xsrf_headers())
    assert resp.status_code == 201, resp.text
