"""The application layer: every use case of the platform, behind one façade.

Web handlers, the `compete` CLI and the JupyterLab widgets are thin adapters
over `Platform`.  Business rules (registration, submission limits, which
phase is open, who sees what on a leaderboard) live in this package and
nowhere else, one module per reason to change:

- `actors`: who is asking, and the role rules (who organizes, who creates);
- `records`: finding competitions, phases and participants; the phase calendar;
- `routing`: which queue a submission runs on;
- `visibility`: what a viewer may see of a submission;
- `competitions`: bundles in and out, the list, the yaml text, the files given out;
- `editor`: the YAML view and the forms (pages, columns, phases, programs and data), saved as uploads are read;
- `registrations`: registering, approving, removing and banning participants; co-organizers;
- `submissions`: submitting within the limits, choosing, hiding, rerunning, cancelling;
- `baselines`: the bundle's solutions of a phase, run by organizers as baseline submissions;
- `outputs`: a submission's file, logs and feedback files;
- `reruns`: rerunning every submission of a phase, once its count is confirmed;
- `deletions`: deleting a submission (its owner, under CodaLab's rules, or the organizers);
- `downloads`: submissions' files, logs and outputs as the entries of one zip, for organizers;
- `leaderboards`: boards as data and CSV, the best-score history;
- `views`: competitions and submissions cut to what the actor may see;
- `phases`: opening, closing, re-dating and migrating phases; the phase clock;
- `runs` and `results`: the ledger the dispatcher keeps, and a worker's result checked;
- `lease`: the dispatcher lease (one dispatching process per database, and which one);
- `queues`: organizer queues (create, rotate, see) and what the dispatcher saw of them;
- `lab`: a phase's kit and data into the user's JupyterLab;
- `statistics`: a competition's and the platform's statistics, as tables;
- `lifecycle`: draft, published, private (secret link, invitations), archived, deleted;
- `teams`: teams of participants (create, invite, join, leave, hand over, dissolve).
- `profiles` and `names`: a user's display name and affiliation; names as a viewer sees them
  (display names, pseudonyms on anonymous boards).
- `forum`: a competition's threads and posts, who may write them, their moderation.
- `messages`: announcements and notices, kept in the platform and sent by mail; mail choices.
- `fact_sheets`: the questions asked with each submission, their answers checked, shown and as CSV.
- `similarity`: code and notebook submissions alike enough for organizers to review (signals, never verdicts).
- `probing`: probing-resistant boards (display precision, the Ladder): what participants may read of scores.
- `fairness` and `queue_order`: the fair order of a queue's waiting submissions (pure), and the
  queue's line as the database has it (positions, held submissions, estimated starts).
- `provenance` and `reproduce`: what each run ran with and where; reproducing a submission pinned to it,
  comparing the two; signed manifests of submissions.

Each part works on the shared `Context` (database, store, configuration);
`Platform` builds it, composes the parts and answers each use case by the
part that holds it, under the name adapters have always called.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from .. import models as m
from ..bundles.model import BundleError, Problem
from ..config import Compete
from ..db import Database
from ..errors import Forbidden, LimitReached, NotFound, PlatformError
from ..stores import make_store
from .actors import (
    LOCAL_ADMIN,
    ORGANIZERS_GROUP,
    Actor,
    is_organizer,
    may_create_competitions,
    require_organizer_role,
)
from .baselines import Baselines
from .competitions import Competitions, slugify
from .context import Context
from .deletions import Deletions
from .downloads import Downloads
from .editor import Editor
from .forum import Forum
from .fact_sheets import FactSheets
from .lab import Lab
from .leaderboards import Leaderboards, board_from_row
from .lifecycle import Lifecycle
from .messages import Messages
from .lease import Leases
from .outputs import Outputs
from .phases import Phases
from .probing import Probings
from .profiles import Profiles
from .queues import Queues
from .records import CHOOSING_RULES, COMPETITION_STATUSES, competition_status, current_phase, phase_number
from .registrations import Registrations
from .reproduce import Reproductions
from .reruns import Reruns
from .routing import DEFAULT_QUEUE
from .runs import Runs
from .similarity import Similarity
from .statistics import Statistics
from .submissions import Submissions, submission_kind, zip_folder
from .teams import Teams
from .views import MAX_OFFSET, Views


class _By:
    """A façade method answered by one of the platform's parts (the part's method of the same name)."""

    def __init__(self, part: str):
        self.part = part
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, platform: Any, owner: Optional[type] = None) -> Any:
        if platform is None:
            return self
        return getattr(getattr(platform, self.part), self.name)


class Platform:
    """One platform instance: a database, an artifact store and the configuration."""

    def __init__(self, config: Optional[Compete] = None, *, home: Optional[str] = None, db_url: Optional[str] = None):
        config = config or Compete()
        if home:
            config.home = str(home)
        if db_url:
            config.db_url = db_url
        Path(config.home).mkdir(parents=True, exist_ok=True)
        database = Database(config.resolved_db_url(), upgrade=config.upgrade_db)
        self.context = Context(config=config, db=database, store=make_store(config))
        self._compose(self.context)
        # Boards never built yet (a database just upgraded) are built now, not by a request.
        self.leaderboards.build_missing()

    def _compose(self, ctx: Context) -> None:
        self.runs = Runs(ctx)
        self.lease = Leases(ctx)
        self.competitions = Competitions(ctx)
        self.registrations = Registrations(ctx)
        self.submissions = Submissions(ctx, self.runs)
        self.baselines = Baselines(ctx)
        self.outputs = Outputs(ctx)
        self.leaderboards = Leaderboards(ctx)
        self.views = Views(ctx)
        self.phases = Phases(ctx, self.views)
        self.queues = Queues(ctx)
        self.lab = Lab(self.views, self.competitions)
        self.statistics = Statistics(ctx)
        self.reruns = Reruns(ctx)
        self.deletions = Deletions(ctx)
        self.downloads = Downloads(ctx)
        self.lifecycles = Lifecycle(ctx)
        self.editor = Editor(ctx, self.competitions)
        self.teams = Teams(ctx)
        self.profiles = Profiles(ctx)
        self.forum = Forum(ctx)
        self.messages = Messages(ctx)
        self.fact_sheets = FactSheets(ctx, self.editor)
        self.similarity = Similarity(ctx)
        self.probings = Probings(ctx, self.editor)
        self.reproductions = Reproductions(ctx)

    @property
    def config(self) -> Compete:
        return self.context.config

    @property
    def db(self) -> Database:
        return self.context.db

    @property
    def store(self):
        return self.context.store

    def close(self) -> None:
        self.db.dispose()

    def unpack_limits(self):
        return self.context.unpack_limits()

    # -- roles --------------------------------------------------------------------------------------
    @staticmethod
    def is_organizer(actor: Actor, comp: m.Competition) -> bool:
        return is_organizer(actor, comp)

    @staticmethod
    def may_create_competitions(actor: Actor) -> bool:
        return may_create_competitions(actor)

    @staticmethod
    def require_organizer_role(actor: Actor) -> None:
        require_organizer_role(actor)

    @staticmethod
    def phase_number(comp: m.Competition, phase: m.Phase) -> int:
        return phase_number(comp, phase)

    # -- competitions -------------------------------------------------------------------------------
    validate_bundle = _By("competitions")
    create_competition = _By("competitions")
    competition_spec = _By("competitions")
    export_competition = _By("competitions")
    list_competitions = _By("competitions")
    organized_competitions = _By("competitions")
    competition_logo = _By("competitions")
    phase_download = _By("competitions")
    competition_yaml = _By("competitions")
    update_competition_yaml = _By("editor")
    save_competition_yaml = _By("editor")
    editable_spec = _By("editor")
    dataset_info = _By("editor")
    current_warnings = _By("editor")
    save_page = _By("editor")
    delete_page = _By("editor")
    move_page = _By("editor")
    preview_page = _By("editor")
    terms_format = _By("editor")
    save_overview = _By("editor")
    save_phase = _By("editor")
    save_task = _By("editor")
    save_columns = _By("editor")
    add_column = _By("editor")
    remove_column = _By("editor")
    add_phase = _By("editor")
    remove_phase = _By("editor")
    replace_data = _By("editor")
    save_board_anonymity = _By("editor")

    # -- lifecycle ----------------------------------------------------------------------------------
    set_lifecycle = _By("lifecycles")
    lifecycle = _By("lifecycles")
    rotate_secret = _By("lifecycles")
    invite = _By("lifecycles")
    delete_competition = _By("lifecycles")

    # -- participants -------------------------------------------------------------------------------
    register = _By("registrations")
    set_registration = _By("registrations")
    participants = _By("registrations")
    bulk_set_registration = _By("registrations")
    bulk_reinstate = _By("registrations")
    organizers = _By("registrations")
    set_organizers = _By("registrations")

    # -- submissions --------------------------------------------------------------------------------
    submit = _By("submissions")
    submissions_left = _By("submissions")
    select_for_leaderboard = _By("submissions")
    rerun = _By("submissions")
    run_baselines = _By("baselines")
    phase_solutions = _By("baselines")

    def set_hidden(self, submission_id: int, hidden: bool, actor: Actor) -> dict[str, Any]:
        """Hide a submission from the leaderboard, or show it again (organizers); the submission after."""
        self.submissions.set_hidden(submission_id, hidden, actor)
        return self.views.submission_view(submission_id, actor)

    def set_selected(self, submission_id: int, selected: bool, actor: Actor) -> dict[str, Any]:
        """The participant's choice of what the leaderboard shows; the submission after."""
        self.submissions.set_selected(submission_id, selected, actor)
        return self.views.submission_view(submission_id, actor)

    def cancel_submission(self, submission_id: int, actor: Actor, dispatcher: Any = None) -> dict[str, Any]:
        """Cancel a submission that has not finished (its owner or the organizers); the submission after."""
        self.submissions.cancel_submission(submission_id, actor, dispatcher)
        return self.views.submission_view(submission_id, actor)

    submission_logs = _By("outputs")
    artifact_path = _By("outputs")
    submission_log = _By("outputs")
    submission_artifact = _By("outputs")
    submission_file = _By("outputs")
    delete_submission = _By("deletions")
    submission_bundle = _By("downloads")
    phase_bundle = _By("downloads")

    # -- views --------------------------------------------------------------------------------------
    competition_detail = _By("views")
    phases_view = _By("views")
    submission = _By("views")
    submissions_of = _By("views")
    submissions_view = _By("views")
    submission_view = _By("views")
    storage_use = _By("views")

    # -- leaderboards -------------------------------------------------------------------------------
    leaderboard = _By("leaderboards")
    leaderboard_view = _By("leaderboards")
    leaderboard_csv = _By("leaderboards")
    leaderboard_csv_chunks = _By("leaderboards")
    leaderboard_etag = _By("leaderboards")
    leaderboard_answer = _By("leaderboards")
    rebuild_boards = _By("leaderboards")
    best_score_history = _By("leaderboards")

    # -- phases -------------------------------------------------------------------------------------
    open_phase_now = _By("phases")
    close_phase_now = _By("phases")
    set_phase_dates = _By("phases")
    migrate_submissions = _By("phases")
    migration_plan = _By("phases")
    rerun_plan = _By("reruns")
    rerun_count = _By("reruns")
    rerun_phase = _By("reruns")

    def tick_phases(self, now: Optional[Any] = None, *, slug: Optional[str] = None) -> dict[str, Any]:
        """One pass of the phase clock (see `phases`): openings marked, auto-migrations run."""
        return self.phases.tick(now, slug=slug)

    # -- queues -------------------------------------------------------------------------------------
    create_queue = _By("queues")
    rotate_credentials = _By("queues")
    queue_info = _By("queues")
    worker_credentials = _By("queues")
    list_queues = _By("queues")
    queue_detail = _By("queues")
    queue_names = _By("queues")
    record_queue_state = _By("queues")
    record_queue_scheduler = _By("queues")
    queue_scheduler = _By("queues")
    wait_for_workers = _By("queues")
    dispatcher_lease = _By("queues")

    # -- JupyterLab ---------------------------------------------------------------------------------
    open_in_lab = _By("lab")
    phase_files = _By("lab")

    # -- statistics ---------------------------------------------------------------------------------
    competition_statistics = _By("statistics")
    platform_statistics = _By("statistics")
    statistics_table = _By("statistics")
    statistics_csv = _By("statistics")

    # -- teams --------------------------------------------------------------------------------------
    team_list = _By("teams")
    team = _By("teams")
    create_team = _By("teams")
    invite_to_team = _By("teams")
    invitation_link = _By("teams")
    answer_invitation = _By("teams")
    join_by_link = _By("teams")
    team_by_link = _By("teams")
    leave_team = _By("teams")
    hand_over_team = _By("teams")
    dissolve_team = _By("teams")
    # -- profiles -----------------------------------------------------------------------------------
    profile = _By("profiles")
    save_profile = _By("profiles")
    # -- forum --------------------------------------------------------------------------------------
    forum_threads = _By("forum")
    forum_thread = _By("forum")
    forum_page_of = _By("forum")
    forum_post = _By("forum")
    forum_submission = _By("forum")
    create_thread = _By("forum")
    reply = _By("forum")
    edit_post = _By("forum")
    edit_thread = _By("forum")
    mark_answer = _By("forum")
    delete_post = _By("forum")
    delete_thread = _By("forum")
    forum_preview = _By("forum")
    # -- messages and mail --------------------------------------------------------------------------
    send_announcement = _By("messages")
    audiences = _By("messages")
    announcements = _By("messages")
    inbox = _By("messages")
    read_message = _By("messages")
    mail_settings = _By("messages")
    save_mail_settings = _By("messages")
    unsubscribe = _By("messages")
    unsubscribe_kind_label = _By("messages")
    mailbox = _By("messages")
    send_queued = _By("messages")
    # -- fact sheets --------------------------------------------------------------------------------
    fact_sheet = _By("fact_sheets")
    save_fact_sheet = _By("fact_sheets")
    save_fact_sheet_columns = _By("fact_sheets")
    fact_sheet_csv = _By("fact_sheets")
    # -- similarity ---------------------------------------------------------------------------------
    similarity_sweep = _By("similarity")
    scan_similarity = _By("similarity")
    similarity_pairs = _By("similarity")
    similarity_pair = _By("similarity")
    set_similarity_verdict = _By("similarity")
    # -- probing-resistant boards -------------------------------------------------------------------
    set_probing = _By("probings")
    # -- provenance, reproductions and manifests ----------------------------------------------------
    run_provenance = _By("reproductions")
    submission_manifest = _By("reproductions")
    reproduce = _By("reproductions")
    reproduce_top = _By("reproductions")
    reproduction_comparison = _By("reproductions")


__all__ = [
    "Actor",
    "BundleError",
    "CHOOSING_RULES",
    "COMPETITION_STATUSES",
    "DEFAULT_QUEUE",
    "Forbidden",
    "LimitReached",
    "LOCAL_ADMIN",
    "MAX_OFFSET",
    "NotFound",
    "ORGANIZERS_GROUP",
    "Platform",
    "PlatformError",
    "Problem",
    "board_from_row",
    "competition_status",
    "current_phase",
    "slugify",
    "submission_kind",
    "zip_folder",
]
