"""The one internal model of a competition bundle.

Both bundle dialects (CodaLab v1.5 and Codabench v2) are read into these
dataclasses; the database stores them and export writes them back.  Per-dialect
meanings are resolved at read time (for example `max_submissions_per_day: 0`),
so that everything after the reader sees one vocabulary:

- a *competition* has *phases*, *tasks*, *pages* and *leaderboards*;
- a phase runs one or more tasks (data + programs) and is ranked on the boards;
- a leaderboard has *columns*; a column is either a score key written by the
  scoring program or a computation over other columns;
- a *solution* (Codabench `solutions`) is an example submission for some
  tasks, which organizers run as a baseline in the phases that hold it.

Data and programs are `DataRef`s: before storing, a path inside the bundle (a
folder or a zip); after storing, the content-hash key of a dataset in the
artifact store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Optional

Dialect = Literal["codalab", "codabench"]
Sorting = Literal["asc", "desc"]

# How a participant's submissions reach a leaderboard.
SUBMISSION_RULES = (
    "Add",  # the participant chooses which submission is shown (one per participant)
    "Add_And_Delete",
    "Add_And_Delete_Multiple",
    "Force_Last",  # the latest finished submission is shown
    "Force_Latest_Multiple",
    "Force_Best",  # the best finished submission is shown
)

# Computations a column can carry.  The first four work on values (Codabench),
# the last three on per-column ranks (CodaLab's computed columns).
VALUE_COMPUTATIONS = ("sum", "avg", "min", "max")
RANK_COMPUTATIONS = ("rank_avg", "rank_weighted", "mrr")
COMPUTATIONS = VALUE_COMPUTATIONS + RANK_COMPUTATIONS

# The data of a task (a CodaLab phase carries the same four).
TASK_DATA_KINDS = ("scoring_program", "ingestion_program", "reference_data", "input_data")
# The data a phase gives participants.
PHASE_DATA_KINDS = ("starting_kit", "public_data")
DATASET_KINDS = (*TASK_DATA_KINDS, "public_data", "starting_kit", "logo", "solution")


@dataclass(frozen=True)
class DataRef:
    """Where a dataset or program comes from.

    kind == "path": `value` is a POSIX path relative to the bundle root, naming a
    folder or a `.zip` file (or, for a logo, an image file).
    kind == "key": `value` is the key of a dataset already in the store.
    """

    kind: Literal["path", "key"]
    value: str


@dataclass
class PageSpec:
    name: str  # stable identifier (CodaLab `html:` key, or a slug of the title)
    title: str
    content: str  # the organizer's raw text; sanitized only for display
    format: Literal["html", "markdown"] = "html"
    source: Optional[str] = None  # file name in the bundle it was read from


@dataclass
class TaskSpec:
    index: int
    name: str
    description: str = ""
    scoring_program: Optional[DataRef] = None
    ingestion_program: Optional[DataRef] = None
    reference_data: Optional[DataRef] = None
    input_data: Optional[DataRef] = None
    ingestion_only_during_scoring: bool = False
    scoring_docker_image: Optional[str] = None
    ingestion_docker_image: Optional[str] = None
    # Data kept on the organizer's workers, never uploaded: {"reference_data": "/abs/path", ...}.
    worker_data: dict[str, str] = field(default_factory=dict)


@dataclass
class PhaseSpec:
    index: int
    name: str
    description: str = ""
    start: Optional[datetime] = None  # naive UTC
    end: Optional[datetime] = None  # naive UTC; None = open-ended
    task_indexes: list[int] = field(default_factory=list)
    # None = no limit.  0 = no submissions allowed (CodaLab's meaning of 0 per
    # day; Codabench's 0 per day is read as None).
    max_submissions: Optional[int] = 100
    max_submissions_per_day: Optional[int] = 5
    execution_time_limit: int = 600  # seconds, per step
    auto_migrate: bool = False  # copy each participant's submission from the previous phase
    hide_results: bool = False  # blind phase: participants never see scores
    hide_output: bool = False
    hide_prediction_output: bool = False
    hide_score_output: bool = False
    results_only: bool = False  # CodaLab is_scoring_only
    # A rule that overrides the boards' rule in this phase (CodaLab's
    # force_best_submission_to_leaderboard is per phase).
    submission_rule: Optional[str] = None
    starting_kit: Optional[DataRef] = None
    public_data: Optional[DataRef] = None
    color: Optional[str] = None
    gpus: int = 0
    allow_network: bool = False
    queue: Optional[str] = None
    # Indexes of the solutions the phase lists (Codabench phase `solutions`);
    # empty: the solutions of the phase's tasks.
    solution_indexes: list[int] = field(default_factory=list)
    # The task whose scoring program and reference data score the phase from its
    # tasks' scoring outputs, run after them (a CodaLab 1.8 parallel parent's own
    # scoring program); not one of `task_indexes`.  None: the union of the tasks' scores.
    aggregation_task: Optional[int] = None
    # Waiting runs held per participant (or team) beyond this many running;
    # None: no limit (EvalAI's max_concurrent_submissions_allowed).
    max_concurrent_submissions: Optional[int] = None
    # Participants may rerun their own submissions exactly (organizers always may).
    allow_reproduce: bool = False


@dataclass
class SolutionSpec:
    """An example submission shipped with the bundle (Codabench `solutions`).

    `data` is the solution's folder or zip (a results or code submission);
    `task_indexes` the tasks it solves.  `source` is the path the bundle
    named it by, used again by export; it is a name only and takes no part in
    comparing two specs.
    """

    index: int
    data: DataRef
    task_indexes: list[int] = field(default_factory=list)
    name: str = ""
    description: str = ""
    source: Optional[str] = field(default=None, compare=False)


@dataclass
class ColumnSpec:
    key: str  # the name the scoring program writes (or the computed column's key)
    title: str
    index: int
    sorting: Sorting = "desc"
    precision: int = 2
    hidden: bool = False
    computation: Optional[str] = None  # one of COMPUTATIONS
    source_keys: list[str] = field(default_factory=list)  # inputs of a computation
    weights: Optional[list[float]] = None  # rank_weighted only


@dataclass
class LeaderboardSpec:
    key: str
    title: str
    index: int = 0
    hidden: bool = False
    submission_rule: str = "Force_Last"
    primary_key: Optional[str] = None  # key of the column rows are ordered by
    columns: list[ColumnSpec] = field(default_factory=list)
    # Names shown as pseudonyms to all but organizers (None: the competition's `anonymous_leaderboard`).
    anonymous: Optional[bool] = None
    # Keys of the fact sheet questions whose answers the board shows as columns.
    fact_sheet_columns: list[str] = field(default_factory=list)
    # Probing resistance of the public board (`scoring.probing`): shown decimals, and the Ladder.
    display_precision: Optional[int] = None
    ladder: Optional[str] = None  # "fixed" (with ladder_step) or "parameter_free"
    ladder_step: Optional[float] = None


@dataclass
class CompetitionSpec:
    title: str
    dialect: Dialect
    description: str = ""
    logo: Optional[DataRef] = None
    docker_image: Optional[str] = None
    queue: Optional[str] = None
    registration_auto_approve: bool = True
    enable_detailed_results: bool = False
    terms: Optional[str] = None  # raw terms text (a page as well in the UI)
    contact_email: Optional[str] = None
    admin_names: list[str] = field(default_factory=list)
    pages: list[PageSpec] = field(default_factory=list)
    tasks: list[TaskSpec] = field(default_factory=list)
    phases: list[PhaseSpec] = field(default_factory=list)
    leaderboards: list[LeaderboardSpec] = field(default_factory=list)
    solutions: list[SolutionSpec] = field(default_factory=list)
    # Known keys this platform keeps but does not act on yet (for export).
    extra: dict = field(default_factory=dict)
    # The bundle's `published`: true uploads a published competition, false or absent a draft.
    published: Optional[bool] = None
    # Participants may enter as teams (CodaLab's `allow_teams`/`enable_teams`, Codabench's `allow_teams`).
    allow_teams: bool = False
    # CodaLab's and Codabench's `anonymous_leaderboard`: participants' names hidden on the boards.
    anonymous_leaderboard: bool = False
    # A forum for the competition (CodaLab's `enable_forum`, Codabench's `forum_enabled`).
    enable_forum: bool = False
    # Questions asked with each submission ({"key", "type", "title", "selection", "is_required",
    # "is_on_leaderboard"}, see `fact_sheet`); None when there are none.
    fact_sheet: Optional[list[dict]] = None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle, shown as `file: key: message`."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class BundleError(Exception):
    """A bundle that cannot be imported; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
