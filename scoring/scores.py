"""Reading the scores a scoring program leaves in its output folder.

A scoring program (CodaLab v1.5 or Codabench v2) ends by writing either
``scores.json`` (a JSON object of key -> number) or ``scores.txt`` (one
``key: value`` per line) into its ``output/`` folder. The worker turns that file
into a plain ``dict[str, float]`` with the functions here; the leaderboard then
picks out the keys that name its columns and ignores the rest.

Choices, shared by both formats:

- ``nan`` is accepted. Metrics legitimately produce it (an empty class, a
  division by zero), and refusing the file would throw away every other score;
  a NaN score is shown as missing and always ranks after every real score.
- ``inf`` and ``-inf`` are rejected. An infinite value almost always means the
  metric broke, and it would silently take first place on any board that sorts
  in its direction; the message asks the organizer to write a finite number or
  ``nan`` instead.
- A duplicate key keeps its last value, as CodaLab and ``json.loads`` both do,
  so that bundles whose programs print a key twice keep working unchanged.
- An empty file gives an empty dict: which columns must be present is for the
  caller to decide, since only it knows the leaderboard.

Errors are :class:`ScoreFileError` with a message that names the file, the line
or key, and what is wrong, ready to show to the organizer who wrote the
scoring program.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat

__all__ = [
    "MAX_SCORES_FILE_BYTES",
    "ScoreFileError",
    "parse_scores_json",
    "parse_scores_txt",
    "read_scores",
]

# A scores file is a handful of lines; anything far bigger is a scoring program
# that dumped something else there, and reading it whole would only cost memory.
MAX_SCORES_FILE_BYTES = 1024 * 1024

_BOM = "\ufeff"


class ScoreFileError(ValueError):
    """A scores file that cannot be read; the message says where and why."""


def _shorten(text: str, limit: int = 60) -> str:
    """Keep quoted user text short enough for a one-line error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite_or_nan(number: float, where: str) -> float:
    if math.isinf(number):
        raise ScoreFileError(
            f"{where}: value is infinite; write a finite number, or nan if the "
            "metric is undefined"
        )
    return number


def parse_scores_txt(text: str, source: str = "scores.txt") -> dict[str, float]:
    """Parse the CodaLab ``scores.txt`` format: one ``key: value`` per line.

    Each line is split on its first colon, so ``correct:1`` and
    ``  key  :  0.25  `` are both valid; blank lines are ignored.
    """
    if text.startswith(_BOM):
        # Editors on Windows prepend a BOM; it would otherwise glue onto the first key.
        text = text[1:]
    scores: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, colon, raw_value = line.partition(":")
        key = key.strip()
        raw_value = raw_value.strip()
        if not colon:
            raise ScoreFileError(
                f"{source}: line {number}: expected 'key: value', got "
                f"{_shorten(line.strip())!r} (no colon)"
            )
        if not key:
            raise ScoreFileError(
                f"{source}: line {number}: the key before ':' is empty"
            )
        where = f"{source}: line {number}: {key!r}"
        try:
            value = float(raw_value)
        except ValueError:
            raise ScoreFileError(
                f"{where}: value {_shorten(raw_value)!r} is not a number"
            ) from None
        scores[key] = _finite_or_nan(value, where)
    return scores


def _json_number(value: object, where: str) -> float:
    # bool is an int subclass in Python, but `true` is not a score.
    if isinstance(value, bool) or value is None:
        raise ScoreFileError(f"{where}: value {json.dumps(value)} is not a number")
    if isinstance(value, (int, float)):
        return _finite_or_nan(float(value), where)
    if isinstance(value, str):
        # Codabench applies float() to every value, so "0.5" is a valid score.
        try:
            number = float(value.strip())
        except ValueError:
            raise ScoreFileError(
                f"{where}: value {_shorten(value)!r} is not a number"
            ) from None
        return _finite_or_nan(number, where)
    kind = "an object" if isinstance(value, dict) else "a list"
    raise ScoreFileError(f"{where}: value is {kind}, expected a number")


def parse_scores_json(text: str | bytes, source: str = "scores.json") -> dict[str, float]:
    """Parse a ``scores.json``: a JSON object mapping each key to a number.

    Numbers may also be written as numeric strings (``"0.5"``); booleans, null,
    lists and nested objects are errors.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ScoreFileError(
                f"{source}: not UTF-8 text (byte {error.start}); write the file "
                "as UTF-8 JSON"
            ) from None
    if text.startswith(_BOM):
        text = text[1:]
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ScoreFileError(
            f"{source}: line {error.lineno}, column {error.colno}: not valid JSON "
            f"({error.msg})"
        ) from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise ScoreFileError(
            f"{source}: expected a JSON object like {{\"accuracy\": 0.9}}, got {kind}"
        )
    return {
        key: _json_number(value, f"{source}: {key!r}")
        for key, value in document.items()
    }


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _open_regular(folder_fd: int, name: str) -> int | None:
    """An fd of `name` in the folder, None when it is missing; never through a link.

    The output folder is written by untrusted code: a link could make the
    worker read (and echo in an error) a file of its own machine, and a FIFO
    would block the reader forever (hence O_NONBLOCK on the open).
    """
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=folder_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENXIO):
            raise ScoreFileError(
                f"{name} is a symbolic link or special file; the scoring program must write a regular file"
            ) from None
        raise ScoreFileError(f"{name}: cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ScoreFileError(f"{name} is not a regular file; the scoring program must write a regular file")
    os.set_blocking(fd, True)
    return fd


def _read_text(fd: int, name: str) -> str:
    size = os.fstat(fd).st_size
    if size > MAX_SCORES_FILE_BYTES:
        raise ScoreFileError(
            f"{name}: file is {size} bytes, more than the "
            f"{MAX_SCORES_FILE_BYTES} allowed; a scores file holds only key/value pairs"
        )
    with os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read(MAX_SCORES_FILE_BYTES + 1)
    if len(data) > MAX_SCORES_FILE_BYTES:
        raise ScoreFileError(
            f"{name}: file grew past the {MAX_SCORES_FILE_BYTES} bytes allowed; "
            "a scores file holds only key/value pairs"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScoreFileError(
            f"{name}: not UTF-8 text (byte {error.start}); write the file as UTF-8"
        ) from None


def read_scores(output_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Read the scores a scoring program wrote into ``output_dir``.

    ``scores.json`` is preferred when both files exist (it is the Codabench
    format and the less ambiguous one); otherwise ``scores.txt`` is read.
    Either is read only as a regular file, opened without following a link
    (``O_NOFOLLOW``) below the folder the worker made.
    """
    neither = ScoreFileError(
        "the scoring program wrote neither scores.json nor scores.txt in its "
        "output; make it write one of them into its output folder"
    )
    try:
        folder_fd = os.open(os.fspath(output_dir), os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise neither from None
    except OSError as error:
        raise ScoreFileError(f"the scoring output cannot be read ({error.strerror})") from None
    try:
        for name, parse in (("scores.json", parse_scores_json), ("scores.txt", parse_scores_txt)):
            fd = _open_regular(folder_fd, name)
            if fd is None:
                continue
            try:
                return parse(_read_text(fd, name), source=name)
            finally:
                os.close(fd)
    finally:
        os.close(folder_fd)
    raise neither
