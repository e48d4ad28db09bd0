"""All tables of the platform (SQLAlchemy 2, typed).

The database is the record: every state change of a submission is a row
written here, and `alembic/` holds every schema change (the test suite checks
that these models and the migrations agree).  Handlers never build SQL; the
application layer (`app/`) is the only writer.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .contract import Status


def utcnow() -> dt.datetime:
    """Naive UTC: every timestamp in the database is UTC without tzinfo."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# Submission statuses, in the order a submission goes through them: the contract's.
SUBMITTED = Status.SUBMITTED
PREPARING = Status.PREPARING
RUNNING = Status.RUNNING
SCORING = Status.SCORING
FINISHED = Status.FINISHED
FAILED = Status.FAILED
CANCELLED = Status.CANCELLED
STATUSES = Status.ALL
TERMINAL_STATUSES = Status.TERMINAL

# Registration statuses of a participant in a competition.
PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
REMOVED = "removed"
BANNED = "banned"  # removed, and may not register again

# Lifecycle of a competition.  A draft is seen by its organizers only; a private
# competition is listed nowhere and reached by its secret link (or an invitation);
# an archived one is read-only with its boards kept.  Deleting removes the row.
DRAFT = "draft"
PUBLISHED = "published"
PRIVATE = "private"
ARCHIVED = "archived"
COMPETITION_STATUSES = (DRAFT, PUBLISHED, PRIVATE, ARCHIVED)


class Competition(Base):
    __tablename__ = "competitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    dialect: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    logo_key: Mapped[Optional[str]] = mapped_column(String(64))
    docker_image: Mapped[Optional[str]] = mapped_column(String(300))
    queue: Mapped[Optional[str]] = mapped_column(String(100))
    registration_auto_approve: Mapped[bool] = mapped_column(Boolean, default=True)
    enable_detailed_results: Mapped[bool] = mapped_column(Boolean, default=False)
    terms: Mapped[Optional[str]] = mapped_column(Text)
    contact_email: Mapped[Optional[str]] = mapped_column(String(300))
    admin_names: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=PUBLISHED, server_default=PUBLISHED)
    status_changed_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    # The token of a private competition's secret link (None until first made private).
    secret: Mapped[Optional[str]] = mapped_column(String(64))
    # Community settings (CodaLab's and Codabench's keys of the same names).
    allow_teams: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    enable_forum: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Boards of this competition hide participants' names unless a board says otherwise.
    anonymous_leaderboard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Codabench's fact sheet: questions asked with each submission
    # [{"key", "title", "type": text|checkbox|select, "selection": [...], "is_required"}].
    fact_sheet: Mapped[Optional[list[Any]]] = mapped_column(JSON)

    pages: Mapped[list["Page"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="Page.position"
    )
    tasks: Mapped[list["Task"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="Task.index"
    )
    phases: Mapped[list["Phase"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="Phase.index"
    )
    leaderboards: Mapped[list["Leaderboard"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="Leaderboard.index"
    )
    participants: Mapped[list["Participant"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan"
    )
    solutions: Mapped[list["Solution"]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="Solution.index"
    )


class Page(Base):
    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(20), default="html")
    source: Mapped[Optional[str]] = mapped_column(String(500))

    competition: Mapped[Competition] = relationship(back_populates="pages")


class Dataset(Base):
    """A dataset or program in the artifact store, by the SHA-256 of its bytes."""

    __tablename__ = "datasets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("competition_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    scoring_program_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    ingestion_program_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    reference_data_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    input_data_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    ingestion_only_during_scoring: Mapped[bool] = mapped_column(Boolean, default=False)
    scoring_docker_image: Mapped[Optional[str]] = mapped_column(String(300))
    ingestion_docker_image: Mapped[Optional[str]] = mapped_column(String(300))
    # Data that lives on the organizer's workers only: {"reference_data": "/path/on/worker", ...}.
    # It is never uploaded; such a task runs only on a queue whose workers have it.
    worker_data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    competition: Mapped[Competition] = relationship(back_populates="tasks")


class Phase(Base):
    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("competition_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    start: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    end: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    task_indexes: Mapped[list[Any]] = mapped_column(default=list)
    max_submissions: Mapped[Optional[int]] = mapped_column(Integer)
    max_submissions_per_day: Mapped[Optional[int]] = mapped_column(Integer)
    execution_time_limit: Mapped[int] = mapped_column(Integer, default=600)
    auto_migrate: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_results: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_output: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_prediction_output: Mapped[bool] = mapped_column(Boolean, default=False)
    hide_score_output: Mapped[bool] = mapped_column(Boolean, default=False)
    results_only: Mapped[bool] = mapped_column(Boolean, default=False)
    submission_rule: Mapped[Optional[str]] = mapped_column(String(40))
    starting_kit_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    public_data_key: Mapped[Optional[str]] = mapped_column(ForeignKey("datasets.key"))
    color: Mapped[Optional[str]] = mapped_column(String(40))
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    allow_network: Mapped[bool] = mapped_column(Boolean, default=False)
    queue: Mapped[Optional[str]] = mapped_column(String(100))
    # Phase clock: when the phase was seen open, and when its submissions were
    # migrated into it (auto-migration runs once per phase, across restarts).
    opened_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    migrated_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    # The solutions the bundle lists for this phase (empty: those of its tasks).
    solution_indexes: Mapped[list[Any]] = mapped_column(default=list)
    # The task whose scoring program scores the phase from its tasks' scoring outputs,
    # after them (a CodaLab 1.8 parallel parent's own); None: the union of their scores.
    aggregation_task: Mapped[Optional[int]] = mapped_column(Integer)
    # Fair share: at most this many of a participant's (or team's) submissions waiting
    # or running at once (None: no limit).
    max_concurrent_submissions: Mapped[Optional[int]] = mapped_column(Integer)
    # Whether participants may reproduce their own submissions (organizers always may).
    allow_reproduce: Mapped[bool] = mapped_column(Boolean, default=False)

    competition: Mapped[Competition] = relationship(back_populates="phases")


class Solution(Base):
    """An example submission of the bundle (Codabench `solutions`), run by organizers as a baseline."""

    __tablename__ = "solutions"
    __table_args__ = (UniqueConstraint("competition_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    data_key: Mapped[str] = mapped_column(ForeignKey("datasets.key"))
    task_indexes: Mapped[list[Any]] = mapped_column(default=list)
    source: Mapped[Optional[str]] = mapped_column(String(500))  # the path the bundle named it by

    competition: Mapped[Competition] = relationship(back_populates="solutions")


class Leaderboard(Base):
    __tablename__ = "leaderboards"
    __table_args__ = (UniqueConstraint("competition_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    submission_rule: Mapped[str] = mapped_column(String(40), default="Force_Last")
    primary_key: Mapped[Optional[str]] = mapped_column(String(200))
    # Names shown as stable pseudonyms to everyone but organizers (None: the competition's setting).
    anonymous: Mapped[Optional[bool]] = mapped_column(Boolean)
    # Fact sheet questions whose answers the board shows as columns, by question key.
    fact_sheet_columns: Mapped[list[Any]] = mapped_column(default=list)
    # Probing resistance of the public board: scores shown to this many decimals
    # (None: as stored), and the Ladder rule ("fixed" with `ladder_step`, or
    # "parameter_free"; None: off).  Organizers and the final ranking see the stored scores.
    display_precision: Mapped[Optional[int]] = mapped_column(Integer)
    ladder: Mapped[Optional[str]] = mapped_column(String(20))
    ladder_step: Mapped[Optional[float]] = mapped_column(Float)

    competition: Mapped[Competition] = relationship(back_populates="leaderboards")
    columns: Mapped[list["Column"]] = relationship(
        back_populates="leaderboard", cascade="all, delete-orphan", order_by="Column.index"
    )


class Column(Base):
    __tablename__ = "columns"
    __table_args__ = (UniqueConstraint("leaderboard_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    leaderboard_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    sorting: Mapped[str] = mapped_column(String(4), default="desc")
    precision: Mapped[int] = mapped_column(Integer, default=2)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    computation: Mapped[Optional[str]] = mapped_column(String(20))
    source_keys: Mapped[list[Any]] = mapped_column(default=list)
    weights: Mapped[Optional[list[Any]]] = mapped_column(JSON)

    leaderboard: Mapped[Leaderboard] = relationship(back_populates="columns")


class Participant(Base):
    """A hub user's registration in one competition."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("competition_id", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Bumped by every submission attempt: the UPDATE takes a row lock (PostgreSQL)
    # or the write lock (SQLite), which makes "check the limits, then insert" atomic.
    submission_seq: Mapped[int] = mapped_column(Integer, default=0)

    competition: Mapped[Competition] = relationship(back_populates="participants")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_phase_participant", "phase_id", "participant_id"),
        Index("ix_submissions_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # results | code | notebook
    filename: Mapped[str] = mapped_column(String(300))
    file_key: Mapped[Optional[str]] = mapped_column(String(64))  # the submitted file in the store
    status: Mapped[str] = mapped_column(String(20), default=SUBMITTED)
    status_changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    error: Mapped[Optional[str]] = mapped_column(Text)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)  # shown on the board (rule Add)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)  # hidden by an organizer
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("submissions.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    # Store paths of feedback files: executed_notebook(_html), detailed_results.
    artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the run's result said went wrong without failing it, as sentences for
    # the organizer (outputs over the inline cap, files a worker could not keep),
    # and the outputs left out: [{"name", "bytes", "reason"}].
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    dropped: Mapped[list[Any]] = mapped_column(default=list)
    # Dispatch: the queue it was sent to and the Dask key of the current attempt.
    # A submission is claimed by setting dispatch_key while it is still Submitted
    # and has none; it keeps the status Submitted (waiting, with a position in
    # the queue) until a worker reports Preparing.
    queue: Mapped[Optional[str]] = mapped_column(String(100))
    dispatch_key: Mapped[Optional[str]] = mapped_column(String(200), index=True)
    dispatched_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    # The id of the Dask scheduler the current attempt was sent to (a run is lost only
    # when that scheduler says it does not know it, or is gone).
    dispatch_scheduler: Mapped[Optional[str]] = mapped_column(String(200))
    worker: Mapped[Optional[str]] = mapped_column(String(300))
    # An organizer's run of one of the bundle's solutions: on the board with a badge, under no limit.
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    solution_index: Mapped[Optional[int]] = mapped_column(Integer)
    # Each task's own scores, as its scoring program wrote them: [{"task": index, "scores": {key: value}}]
    # (`scores` holds what the leaderboard takes: their union, or the phase's aggregation).
    task_scores: Mapped[list[Any]] = mapped_column(default=list)
    # The team the submission was made for by one of its members (None: the participant alone).
    team_id: Mapped[Optional[int]] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    # The submitter's answers to the competition's fact sheet, by question key.
    fact_sheet: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A reproduction: the submission it reruns (never on a board, under no limit), and
    # what it was pinned to: {"image_digest", "program_keys", "data_keys", ...}.
    reproduces_id: Mapped[Optional[int]] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"),
                                                         index=True)
    pinned: Mapped[dict[str, Any]] = mapped_column(default=dict)

    phase: Mapped[Phase] = relationship()
    participant: Mapped[Participant] = relationship()
    scores: Mapped[list["Score"]] = relationship(
        back_populates="submission", cascade="all, delete-orphan"
    )
    runs: Mapped[list["Run"]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="Run.id"
    )
    history: Mapped[list["StatusChange"]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="StatusChange.id"
    )


class StatusChange(Base):
    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[Optional[str]] = mapped_column(Text)

    submission: Mapped[Submission] = relationship(back_populates="history")


class Run(Base):
    """One step of one submission on one task."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    task_index: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(20))  # prediction | scoring
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default=SUBMITTED)
    worker: Mapped[Optional[str]] = mapped_column(String(300))
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    exit_code: Mapped[Optional[int]] = mapped_column(Integer)
    elapsed: Mapped[Optional[float]] = mapped_column(Float)
    image: Mapped[Optional[str]] = mapped_column(String(300))
    image_digest: Mapped[Optional[str]] = mapped_column(String(300))
    error: Mapped[Optional[str]] = mapped_column(Text)
    log_path: Mapped[Optional[str]] = mapped_column(String(500))
    # The program the step ran (the task's scoring or ingestion program's key at
    # dispatch): which version of a replaced program scored the submission.
    program_key: Mapped[Optional[str]] = mapped_column(String(64))
    # What exactly ran: image and digest, content keys of the submission, programs and
    # datasets, the executor and its limits, the worker and its hardware, a digest of
    # the image's Python packages, times and exit codes (`app.provenance`).
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)

    submission: Mapped[Submission] = relationship(back_populates="runs")


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("submission_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Optional[float]] = mapped_column(Float)  # None for NaN

    submission: Mapped[Submission] = relationship(back_populates="scores")


class Queue(Base):
    """An organizer's Dask cluster: its own scheduler, CA and credentials.

    The platform holds the CA key and its client certificate under
    `home/queues/<name>/`; the organizer downloads the worker credentials.
    The default queue (the platform's own cluster) has no row.
    """

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    competition_id: Mapped[Optional[int]] = mapped_column(ForeignKey("competitions.id", ondelete="SET NULL"))
    owner: Mapped[Optional[str]] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(300))
    port: Mapped[int] = mapped_column(Integer)
    ca_fingerprint: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    competition: Mapped[Optional[Competition]] = relationship()


class QueueState(Base):
    """What the dispatcher last saw of a queue: its workers, written on every check, and its scheduler.

    Pages and the CLI read it to show attached workers and to say when none is,
    without talking to the scheduler themselves.  The `scheduler_*` columns say
    where the queue's scheduler runs (address, Dask id, host, pid, since when);
    for the default queue they are how every dispatcher finds its scheduler
    process, and `scheduler_folder` holds its TLS files and logs.
    """

    __tablename__ = "queue_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    workers: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[Optional[str]] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    scheduler_address: Mapped[Optional[str]] = mapped_column(String(300))
    scheduler_id: Mapped[Optional[str]] = mapped_column(String(200))
    scheduler_host: Mapped[Optional[str]] = mapped_column(String(300))
    scheduler_pid: Mapped[Optional[int]] = mapped_column(Integer)
    scheduler_folder: Mapped[Optional[str]] = mapped_column(String(500))
    scheduler_started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)


class Lease(Base):
    """A role one process holds at a time, by database: the dispatcher's (`app.lease`).

    One row per role, taken and renewed with conditional UPDATEs: a holder
    keeps it by renewing it before `expires_at`; another process takes it only
    when it is free or expired.  The host, pid and times are what the pages and
    `compete dispatcher --status` show of the holder.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[Optional[str]] = mapped_column(String(100))
    host: Mapped[Optional[str]] = mapped_column(String(300))
    pid: Mapped[Optional[int]] = mapped_column(Integer)
    acquired_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class BoardState(Base):
    """A maintained leaderboard of one phase (`app.standings`): its version and what it was built from.

    `version` goes up each time the board's rows change (the leaderboard's
    ETag is made from it); `definition` is a digest of the board definition
    the rows were ranked by, `digest` one of the rows themselves; `history`
    holds the best-score history of the columns a viewer may chart.
    """

    __tablename__ = "board_states"

    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), primary_key=True)
    leaderboard_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[str] = mapped_column(String(64), default="")
    digest: Mapped[str] = mapped_column(String(64), default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)
    history: Mapped[dict[str, Any]] = mapped_column(default=dict)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class BoardRow(Base):
    """One ranked row of a maintained board, with every column (cut to the viewer when read)."""

    __tablename__ = "board_rows"
    __table_args__ = (
        Index("ix_board_rows_username", "phase_id", "leaderboard_id", "username", "position"),
    )

    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id", ondelete="CASCADE"), primary_key=True)
    leaderboard_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # the rank, 1 first
    submission_id: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(200))  # who made the submission (a baseline: its organizer)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    solution_index: Mapped[Optional[int]] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ranks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The team the row stands for (None: a participant alone).
    team_id: Mapped[Optional[int]] = mapped_column(Integer)
    # The scores the public sees when the board limits precision or follows the Ladder
    # (None: `scores` as they are); `scores` keeps the stored values for organizers.
    shown: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)


# Membership of a user in a team.
INVITED = "invited"
MEMBER = "member"
DECLINED = "declined"
LEFT = "left"
TEAM_OWNER = "owner"


class Team(Base):
    """Participants entering a competition together: one board entry, shared limits."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("competition_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200))  # the creator, or whom they handed it to
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The token of the team's invitation link (None: no link).
    invite_token: Mapped[Optional[str]] = mapped_column(String(64))
    # Bumped by every submission attempt of a member, as Participant.submission_seq:
    # the row lock makes "check the team's limits, then insert" atomic.
    submission_seq: Mapped[int] = mapped_column(Integer, default=0)

    members: Mapped[list["TeamMember"]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamMember.id"
    )


class TeamMember(Base):
    """A user's place in a team: invited, member, declined or left."""

    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "username"),
        Index("ix_team_members_competition_user", "competition_id", "username"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # Kept here too so that "at most one team per competition" is one indexed read.
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=INVITED)
    role: Mapped[str] = mapped_column(String(20), default=MEMBER)
    invited_by: Mapped[Optional[str]] = mapped_column(String(200))
    invited_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    joined_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)

    team: Mapped[Team] = relationship(back_populates="members")


class ForumThread(Base):
    __tablename__ = "forum_threads"
    __table_args__ = (Index("ix_forum_threads_listing", "competition_id", "pinned", "last_post_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_post_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    post_count: Mapped[int] = mapped_column(Integer, default=0)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The post marked as the answer (None: not answered).
    answer_post_id: Mapped[Optional[int]] = mapped_column(Integer)
    # The failed submission the thread asks about, when opened from it.
    submission_id: Mapped[Optional[int]] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"))

    posts: Mapped[list["ForumPost"]] = relationship(
        back_populates="thread", cascade="all, delete-orphan", order_by="ForumPost.id"
    )


class ForumPost(Base):
    __tablename__ = "forum_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("forum_threads.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown, as written
    html: Mapped[str] = mapped_column(Text, default="")  # rendered and sanitized as pages are
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    edited_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    edited_by: Mapped[Optional[str]] = mapped_column(String(200))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    thread: Mapped[ForumThread] = relationship(back_populates="posts")


class Message(Base):
    """Something the platform told users: an announcement or a notification, kept whether or not mail went out."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_competition", "competition_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[Optional[int]] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    # announcement | submission_finished | submission_failed | phase_opened | phase_closed | approved
    kind: Mapped[str] = mapped_column(String(40))
    # Who it was for: "all", "phase:<index>", "team:<id>", "user:<name>".
    audience: Mapped[str] = mapped_column(String(300), default="all")
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown
    html: Mapped[str] = mapped_column(Text, default="")  # rendered and sanitized
    sender: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    recipients: Mapped[list["MessageRecipient"]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="MessageRecipient.id"
    )


class MessageRecipient(Base):
    """One user's copy of a message, and what became of its mail."""

    __tablename__ = "message_recipients"
    __table_args__ = (
        UniqueConstraint("message_id", "username"),
        Index("ix_message_recipients_user", "username", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    address: Mapped[Optional[str]] = mapped_column(String(300))
    # queued | sent | failed | no_address | unsubscribed
    mail_status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[Optional[str]] = mapped_column(Text)
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    read_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)

    message: Mapped[Message] = relationship(back_populates="recipients")


class Profile(Base):
    """What a hub user chose to show and to receive: display name, affiliation, mail address and kinds."""

    __tablename__ = "profiles"

    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[Optional[str]] = mapped_column(String(200))
    affiliation: Mapped[Optional[str]] = mapped_column(String(300))
    email: Mapped[Optional[str]] = mapped_column(String(300))
    # Mail wanted per kind of message ({kind: bool}); a kind absent takes its default.
    mail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The token of the one-click unsubscribe links in this user's mail.
    unsubscribe_token: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SimilaritySignature(Base):
    """The MinHash signature of one code or notebook submission's normalized tokens."""

    __tablename__ = "similarity_signatures"
    __table_args__ = (Index("ix_similarity_signatures_competition", "competition_id"),)

    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    signature: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[Optional[str]] = mapped_column(Text)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SimilarityPair(Base):
    """Two submissions of different participants whose code is alike (for organizers to review)."""

    __tablename__ = "similarity_pairs"
    __table_args__ = (
        UniqueConstraint("first_id", "second_id"),
        Index("ix_similarity_pairs_competition", "competition_id", "similarity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    first_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    second_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    similarity: Mapped[float] = mapped_column(Float)
    found_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    reviewed_by: Mapped[Optional[str]] = mapped_column(String(200))
    verdict: Mapped[Optional[str]] = mapped_column(String(40))
