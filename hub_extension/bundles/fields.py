"""Typed reading of `competition.yaml` values, with every problem collected.

The dialect readers (`codalab.py`, `codabench.py`) never raise on bad input:
they read each key through a `Section`, which records a `Problem` (an error)
or a warning with the key path the organizer must fix
(`competition.yaml: phases[1].start: must be a date, got 'tomorrow'`) and
returns a default so that reading continues and all problems surface at once.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional

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


# Dates.  CodaLab read phase dates with PyYAML (dates and ISO date-times) and
# Django's parse_datetime; Codabench reads every date with dateutil's parser
# (month first: `8-7-2019` is August 7).  Accepted here: the union of what the
# two accept in practice, see docs/bundle-formats.md#dates.
_MONTH_NAMES = {name: number for number, names in enumerate((
    (), ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
    ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
    ("october", "oct"), ("november", "nov"), ("december", "dec"),
)) for name in names}
_TIME = (r"(?:(?:\s*[Tt]\s*|\s*,?\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2})"
         r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,6})\d*)?)?"
         r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?")
_ZONE = r"\s*(?P<zone>[Zz]|UTC|utc|GMT|gmt|[+-]\d{2}(?::?\d{2})?)?"
_DATE_PATTERNS = tuple(re.compile(rf"^\s*{date}{_TIME}{_ZONE}\s*$") for date in (
    r"(?P<year>\d{4})[-/.](?P<first>\d{1,2})[-/.](?P<second_>\d{1,2})",  # 2012-10-1: year, month, day
    r"(?P<first>\d{1,2})[-/.](?P<second_>\d{1,2})[-/.](?P<year>\d{4})",  # 8-7-2019: month first
    r"(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})",  # Oct 1, 2012
    r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mon>[A-Za-z]{3,9})\.?,?\s+(?P<year>\d{4})",  # 1 October 2012
))
DATE_EXAMPLE = "2026-01-31 or 2026-01-31 12:00 (UTC unless an offset like +02:00 follows)"


@dataclass(frozen=True)
class WrittenDate:
    """A date as written in a bundle: the moment it names, and how it was written."""

    moment: datetime  # naive UTC
    wall: datetime  # the written date and time, any offset left out
    offset: Optional[timedelta]  # the written UTC offset, None when none was written
    yaml_datetime: bool  # YAML had already parsed it as a date-time (unquoted ISO form)


def _match_date(text: str) -> Optional[tuple[datetime, Optional[timedelta]]]:
    for pattern in _DATE_PATTERNS:
        found = pattern.match(text)
        if found is None:
            continue
        parts = found.groupdict()
        year = int(parts["year"])
        if parts.get("mon") is not None:
            month = _MONTH_NAMES.get(parts["mon"].lower())
            if month is None:
                return None
            day = int(parts["day"])
        elif pattern is _DATE_PATTERNS[0]:
            month, day = int(parts["first"]), int(parts["second_"])
        else:
            month, day = int(parts["first"]), int(parts["second_"])
            if month > 12 and day <= 12:  # 31-1-2026: day first, as dateutil reads it
                month, day = day, month
        hour = int(parts["hour"] or 0)
        if parts["ampm"]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if parts["ampm"][0].lower() == "p" else 0)
        fraction = (parts["fraction"] or "").ljust(6, "0")
        try:
            wall = datetime(year, month, day, hour, int(parts["minute"] or 0), int(parts["second"] or 0),
                            int(fraction or 0))
        except ValueError:
            return None
        zone = parts["zone"]
        if zone is None:
            return wall, None
        if zone.upper() in ("Z", "UTC", "GMT"):
            return wall, timedelta(0)
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        if offset >= timedelta(hours=24):
            return None
        return wall, sign * offset
    return None


def read_date(value: Any) -> Optional[WrittenDate]:
    """A YAML date value as written, or None if neither CodaLab nor Codabench would take it as a date."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        wall = value.replace(tzinfo=None)
        return WrittenDate(to_naive_utc(value), wall, offset, True)
    if isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
        return WrittenDate(moment, moment, None, False)
    if not isinstance(value, str):
        return None
    found = _match_date(value)
    if found is None:
        return None
    wall, offset = found
    moment = wall - offset if offset else wall
    return WrittenDate(moment, wall, offset, False)


def codabench_date(written: WrittenDate) -> datetime:
    """The moment Codabench makes of the same value (UTC, naive).

    Its importer turns a value YAML already parsed (an unquoted `2019-09-24
    17:00:00`) into midnight of that day, and replaces a written offset with
    UTC instead of converting (`10:00+02:00` becomes 10:00 UTC).
    """
    if written.yaml_datetime:
        return datetime(written.wall.year, written.wall.month, written.wall.day)
    return written.wall


def to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def parse_date(value: Any) -> Optional[datetime]:
    """A YAML date value as a naive UTC datetime, or None if it is not a date."""
    written = read_date(value)
    return written.moment if written is not None else None


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

    def user_names(self, name: str) -> list[str]:
        """Hub user names: CodaLab's comma-separated text (`alice, bob`) or a YAML list; a warning names
        the co-organizers, since the hub's users are not known here."""
        value = self.raw(name)
        if isinstance(value, str):
            names = [n.strip() for n in value.split(",")]
        elif isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            names = [str(v).strip() for v in value]
        else:
            if value is not None:
                self.error(name, f"must be a comma-separated list of user names, got {describe(value)}")
            return []
        names = list(dict.fromkeys(n for n in names if n))
        for bad in [n for n in names if any(c.isspace() for c in n)]:
            self.warn(name, f"{bad!r} is not a user name (names are separated by commas and hold no spaces): "
                            "left out")
            names.remove(bad)
        if names:
            self.warn(name, f"{', '.join(names)} will organize this competition with its creator: each must be "
                            "that person's hub user name exactly (not checked against the hub's users here); "
                            "change the list on the competition's participants page")
        return names

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
        written = self.written_date(name, required=required)
        return written.moment if written is not None else None

    def written_date(self, name: str, *, required: bool = False) -> Optional[WrittenDate]:
        """A date with how it was written (for what the other platform would make of it)."""
        value = self._get(name, required)
        if value is _MISSING:
            return None
        written = read_date(value)
        if written is None:
            self.error(name, f"must be a date, got {describe(value)}; write it like {DATE_EXAMPLE}")
        return written

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

    def check_keys(self, table: Mapping[str, "Known"]) -> dict:
        """Every key against the dialect's table of known keys.

        An honoured key is the reader's to read.  A key that is not supported
        is reported when its value asks for what it does on its own platform
        (`anonymous_leaderboard: true`), and kept in the returned `extra` for
        export; a key the table does not know is reported as a likely typo.
        """
        extra = {}
        for name, value in self.data.items():
            known = table.get(str(name))
            if known is None:
                close = difflib.get_close_matches(str(name), list(table), n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.warn(name, f"unknown key, ignored{hint}")
                continue
            if known.honoured:
                continue
            if value is not None and known.asks(value):
                self.warn(name, f"accepted but not supported: {name} ({known.effect})")
            if known.keep and value is not None:
                extra[str(name)] = jsonable(value)
        return extra


def asks_truthy(value: Any) -> bool:
    """A flag or a setting that is on: true, yes, 1, a non-empty text, list or mapping."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none", "null")
    return bool(value)


def asks_falsy(value: Any) -> bool:
    return not asks_truthy(value)


def asks_never(value: Any) -> bool:
    return False


@dataclass(frozen=True)
class Known:
    """A key of a dialect: read by this platform (honoured), or accepted and not supported.

    `effect` says what the key does on its own platform and what happens here
    instead; it is reported when `asks(value)` is true, which is when the value
    asks for something this platform does not do.  `keep` keeps the value in
    the spec's `extra` so that export writes it back.
    """

    honoured: bool
    effect: str = ""
    asks: Callable[[Any], bool] = asks_truthy
    keep: bool = True


HONOURED = Known(True)
# `published`: read as the lifecycle a competition starts in (`read_published`), and kept so that export
# writes it back as the bundle had it.
PUBLISHED_KEY = Known(False, "read as the competition's lifecycle at upload", asks_never, True)


def read_published(top: "Section") -> Optional[bool]:
    """The bundle's `published` flag; None when it has none (the competition then starts as a draft)."""
    if top.raw("published") is None:
        return None
    return top.flag("published", True)


def unsupported(effect: str, asks: Callable[[Any], bool] = asks_truthy, keep: bool = True) -> Known:
    return Known(False, effect, asks, keep)


def no_effect(why: str) -> Known:
    """A key that changes nothing on its own platform either (internal state, overridden values)."""
    return Known(False, why, asks_never, True)


def stash(extra: dict, part: str, ident: Any, values: dict) -> None:
    """Keep a nested mapping's known-but-unused keys in `extra[part][ident]`."""
    if values:
        extra.setdefault(part, {})[str(ident)] = values
