"""Typed reading of `competition.yaml` values, with every problem collected.

The dialect readers (`codalab.py`, `codabench.py`) never raise on bad input:
they read each key through a `Section`, which records a `Problem` (an error)
or a warning with the key path the organizer must fix
(`competition.yaml: phases[1].start: must be a date, got 'tomorrow'`) and
returns a default so that reading continues and all problems surface at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable, Optional

from .model import Problem

_MISSING = object()


@dataclass
class Issues:
    """Errors and warnings found while reading one bundle."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def warn(self, file: str, key: str, message: str) -> None:
        self.warnings.append(str(Problem(file, key, message)))


def describe(value: Any) -> str:
    """How a wrong value is quoted back to the organizer."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return repr(text)


_DATE_FORMATS = (
    "%m-%d-%Y",  # Codabench's documented form, month first
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y %H:%M:%S",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%Y/%m/%d",
)


def to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def parse_date(value: Any) -> Optional[datetime]:
    """A YAML date value as a naive UTC datetime, or None if it is not a date."""
    if isinstance(value, datetime):
        return to_naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        return to_naive_utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def jsonable(value: Any) -> Any:
    """A YAML value as plain JSON data, so `extra` can be stored in the database."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class Section:
    """One mapping of the YAML document, addressed by its key path.

    `path` is how the mapping is named in messages (`phases[0]`,
    `leaderboard.columns.correct`); each getter records a problem and returns
    the default when the value has the wrong type.
    """

    def __init__(self, issues: Issues, file: str, path: str, data: Any):
        self.issues = issues
        self.file = file
        self.path = path
        self.valid = isinstance(data, dict)
        self.data: dict = data if isinstance(data, dict) else {}
        if data is not None and not self.valid:
            self.issues.error(file, path or "(top)", f"must be a mapping of keys to values, got {describe(data)}")

    # -- naming ---------------------------------------------------------------
    def key(self, name: Any) -> str:
        return f"{self.path}.{name}" if self.path else str(name)

    def error(self, name: Any, message: str) -> None:
        self.issues.error(self.file, self.key(name), message)

    def warn(self, name: Any, message: str) -> None:
        self.issues.warn(self.file, self.key(name), message)

    # -- access ---------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str, default: Any = None) -> Any:
        value = self.data.get(name)
        return default if value is None else value

    def _get(self, name: str, required: bool) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                self.error(name, "is required")
            return _MISSING
        return value

    def text(self, name: str, default: Optional[str] = None, *, required: bool = False) -> Optional[str]:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            self.error(name, f"must be text, got {describe(value)}")
            return default
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return str(value)

    def integer(self, name: str, default: Optional[int] = None, *, minimum: Optional[int] = 0,
                required: bool = False) -> Optional[int]:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        number: Optional[int] = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            number = int(value)
        if number is None:
            self.error(name, f"must be a whole number, got {describe(value)}")
            return default
        if minimum is not None and number < minimum:
            self.error(name, f"must be at least {minimum}, got {number}")
            return default
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        self.error(name, f"must be true or false, got {describe(value)}")
        return default

    def moment(self, name: str, *, required: bool = False) -> Optional[datetime]:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.error(name, f"must be a date, got {describe(value)} (write 1-31-2026 or 2026-01-31 12:00)")
        return parsed

    def choice(self, name: str, choices: Iterable[str], default: Optional[str] = None) -> Optional[str]:
        """A value from a fixed vocabulary, matched without regard to case."""
        value = self._get(name, False)
        if value is _MISSING:
            return default
        by_lower = {c.lower(): c for c in choices}
        if isinstance(value, str) and value.strip().lower() in by_lower:
            return by_lower[value.strip().lower()]
        self.error(name, f"must be one of {', '.join(by_lower.values())}, got {describe(value)}")
        return default

    def listing(self, name: str, *, required: bool = False) -> list:
        value = self._get(name, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.error(name, f"must be a list, got {describe(value)}")
            return []
        return value

    def section(self, name: str, path: Optional[str] = None) -> "Section":
        return Section(self.issues, self.file, path or self.key(name), self.data.get(name))

    def sections(self, name: str, *, required: bool = False) -> list["Section"]:
        """The mappings of a list value, each named `name[i]`."""
        return [Section(self.issues, self.file, f"{self.key(name)}[{i}]", item)
                for i, item in enumerate(self.listing(name, required=required))]

    def leftovers(self, used: Iterable[str], kept: Iterable[str] = ()) -> dict:
        """Warn about unknown keys; return the known-but-unused ones for `extra`."""
        used, kept = set(used), set(kept)
        extra = {}
        for name, value in self.data.items():
            if name in used:
                continue
            if name in kept:
                if value is not None:
                    extra[str(name)] = jsonable(value)
                continue
            self.warn(name, "unknown key, ignored")
        return extra


def stash(extra: dict, part: str, ident: Any, values: dict) -> None:
    """Keep a nested mapping's known-but-unused keys in `extra[part][ident]`."""
    if values:
        extra.setdefault(part, {})[str(ident)] = values
