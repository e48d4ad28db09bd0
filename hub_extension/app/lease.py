"""The dispatcher lease: one process dispatches at a time per database, and everyone can see which.

A lease is one row of `leases` (its name, the holder's id, host and pid,
when it was taken, its last heartbeat, when it expires).  Every move is one
conditional statement, so two processes never both hold it:

- `renew`: UPDATE ... WHERE name = :name AND holder = :me: keeps the lease of
  its holder (and fails once another process has taken it);
- `take`: UPDATE ... WHERE name = :name AND (holder IS NULL OR expires_at <=
  now): takes a free or expired lease; the first row of a database is
  INSERTed by whoever comes first, and a concurrent insert loses on the
  primary key (caught: it did not take the lease);
- `release`: UPDATE ... SET expires_at = now WHERE holder = :me: a successor
  takes over at once.

Times are the database's clock on PostgreSQL (processes on several hosts
compare the same clock) and this host's clock on SQLite (a local file).
The dispatcher (`hub_extension.dispatch`) renews its lease on every tick and
does nothing while another process holds it; the CLI looks at `current()` to
defer to a live holder instead of starting a dispatcher of its own.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import uuid
from typing import Any, Optional

from sqlalchemy import or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import models as m
from .context import Context

DISPATCHER_LEASE = "dispatcher"


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds a lease: an id of its own (one per dispatcher), and the host and pid shown to people."""

    id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> "Holder":
        return cls(id=uuid.uuid4().hex, host=socket.gethostname()[:300], pid=os.getpid())


@dataclasses.dataclass(frozen=True)
class LeaseState:
    """A lease as read at `now` (the clock the lease is kept by)."""

    name: str
    holder: Optional[str]
    host: Optional[str]
    pid: Optional[int]
    acquired_at: Optional[dt.datetime]
    heartbeat_at: Optional[dt.datetime]
    expires_at: dt.datetime
    now: dt.datetime

    @property
    def live(self) -> bool:
        """Held, and not expired: its holder dispatches."""
        return self.holder is not None and self.expires_at > self.now

    @property
    def expires_in(self) -> float:
        """Seconds until it expires (negative: expired that long ago)."""
        return (self.expires_at - self.now).total_seconds()

    @property
    def heartbeat_age(self) -> Optional[float]:
        return None if self.heartbeat_at is None else max(0.0, (self.now - self.heartbeat_at).total_seconds())

    def held_by(self, holder: Holder) -> bool:
        return self.live and self.holder == holder.id

    def describe(self) -> str:
        """`pid N on HOST since TIME`: the holder, as the CLI's lines say it."""
        return f"pid {self.pid} on {self.host} since {when(self.acquired_at)}"

    def summary(self) -> str:
        """One line: who dispatches, or that no process does."""
        if self.live:
            return (f"{self.describe()}; last heartbeat {self.heartbeat_age or 0:.1f} s ago, "
                    f"expires in {self.expires_in:.1f} s")
        return (f"no process dispatches: the lease of pid {self.pid} on {self.host} "
                f"expired {-self.expires_in:.1f} s ago")

    def to_dict(self) -> dict[str, Any]:
        """The lease as plain data (`compete dispatcher --status --json`, the admin's queues page)."""
        return {
            "name": self.name,
            "held": self.live,
            "holder": self.holder,
            "host": self.host,
            "pid": self.pid,
            "acquired_at": _iso(self.acquired_at),
            "heartbeat_at": _iso(self.heartbeat_at),
            "expires_at": _iso(self.expires_at),
            "expires_in": round(self.expires_in, 1),
            "heartbeat_age": None if self.heartbeat_age is None else round(self.heartbeat_age, 1),
            "summary": self.summary(),
        }


def lease_view(state: Optional[LeaseState], name: str = DISPATCHER_LEASE) -> dict[str, Any]:
    """`LeaseState.to_dict()`, and the same keys for a lease no process ever took."""
    if state is not None:
        return state.to_dict()
    return {"name": name, "held": False, "holder": None, "host": None, "pid": None, "acquired_at": None,
            "heartbeat_at": None, "expires_at": None, "expires_in": None, "heartbeat_age": None,
            "summary": "no process has dispatched on this database yet"}


def when(value: Optional[dt.datetime]) -> str:
    """A UTC time as people read it: `2026-12-05 10:00:00 UTC`."""
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return None if value is None else value.isoformat()


def database_now(s: Session) -> dt.datetime:
    """Naive UTC now, by the database's clock on PostgreSQL, by this host's on SQLite."""
    if s.get_bind().dialect.name == "postgresql":
        return s.execute(text("SELECT timezone('utc', clock_timestamp())")).scalar_one()
    return m.utcnow()


class Leases:
    """Leases over the shared context; the dispatcher's by default."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def renew(self, holder: Holder, seconds: float, name: str = DISPATCHER_LEASE) -> bool:
        """Extend a lease `holder` holds by `seconds` from now; False when another process has taken it."""
        with self.ctx.db.session() as s:
            now = database_now(s)
            moved = s.execute(
                update(m.Lease)
                .where(m.Lease.name == name, m.Lease.holder == holder.id)
                .values(heartbeat_at=now, expires_at=now + dt.timedelta(seconds=seconds))
            ).rowcount
        return bool(moved)

    def take(self, holder: Holder, seconds: float, name: str = DISPATCHER_LEASE) -> bool:
        """Take a free or expired lease for `seconds`; False while another process holds it."""
        with self.ctx.db.session() as s:
            now = database_now(s)
            values = _holder_values(holder, now, seconds)
            moved = s.execute(
                update(m.Lease)
                .where(m.Lease.name == name, or_(m.Lease.holder.is_(None), m.Lease.expires_at <= now))
                .values(**values)
            ).rowcount
            if moved:
                return True
            if s.scalar(select(m.Lease.name).where(m.Lease.name == name)) is not None:
                return False
        # The database's first lease of this name: inserted by whoever comes first, in its own
        # transaction (a failed INSERT aborts a PostgreSQL transaction); a concurrent one loses
        # on the primary key and did not take it.
        try:
            with self.ctx.db.session() as s:
                now = database_now(s)
                s.add(m.Lease(name=name, **_holder_values(holder, now, seconds)))
        except IntegrityError:
            return False
        return True

    def acquire(self, holder: Holder, seconds: float, name: str = DISPATCHER_LEASE) -> bool:
        """Renew the lease when `holder` has it, else take it when it is free or expired."""
        return self.renew(holder, seconds, name) or self.take(holder, seconds, name)

    def release(self, holder: Holder, name: str = DISPATCHER_LEASE) -> bool:
        """Expire a lease `holder` holds now, so that a successor takes over at once."""
        with self.ctx.db.session() as s:
            now = database_now(s)
            moved = s.execute(
                update(m.Lease)
                .where(m.Lease.name == name, m.Lease.holder == holder.id, m.Lease.expires_at > now)
                .values(expires_at=now)
            ).rowcount
        return bool(moved)

    def current(self, name: str = DISPATCHER_LEASE) -> Optional[LeaseState]:
        """The lease as it stands (live or not), None when no process ever took it."""
        with self.ctx.db.session() as s:
            row = s.get(m.Lease, name)
            if row is None:
                return None
            now = database_now(s)  # read after the row: a renewal read is never in the future
            return LeaseState(name=row.name, holder=row.holder, host=row.host, pid=row.pid,
                              acquired_at=row.acquired_at, heartbeat_at=row.heartbeat_at,
                              expires_at=row.expires_at, now=now)

    def live(self, name: str = DISPATCHER_LEASE) -> Optional[LeaseState]:
        """The lease when a process holds it now, else None."""
        state = self.current(name)
        return state if state is not None and state.live else None


def _holder_values(holder: Holder, now: dt.datetime, seconds: float) -> dict[str, Any]:
    return {"holder": holder.id, "host": holder.host, "pid": holder.pid, "acquired_at": now,
            "heartbeat_at": now, "expires_at": now + dt.timedelta(seconds=seconds)}
