"""Similarity of submitted code: what organizers review for copies, never a verdict by itself.

Pure logic over bytes, with numpy and no I/O of its own.  A submission's file
(a code zip, a notebook, one source file) is read in memory under caps
(`ReadLimits`): links, absolute or `..` names, binaries and data files are
never read, a member over its cap is left out and said so, and an archive that
would unpack past its total is refused.  Participants' files are hostile: the
sizes a zip declares are checked, then the bytes are read bounded anyway.

Each source unit (a notebook's code cell, a file) is normalized to tokens:
identifiers become one placeholder, literals one placeholder per kind,
comments and whitespace go (Python's `tokenize`; a regular expression for
other languages or code `tokenize` refuses).  Units become shingles of
`SHINGLE` tokens each, so that cells reordered or files renamed still match;
shingles of the phase's starting kit and the bundle's solutions are taken out,
so that everyone who kept the kit is not alike for it.  A MinHash signature of
`PERMUTATIONS` values (deterministic seeds) estimates the Jaccard similarity of
two submissions' shingle sets: `similarity(a, b)`, or `similarities(matrix, b)`
against many at once.
"""
from __future__ import annotations

import hashlib
import io
import json
import keyword
import re
import stat
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Iterable, Optional

import numpy as np

SHINGLE = 5
PERMUTATIONS = 128
# The largest prime below 2**32: (a * x + b) mod P of 32-bit values never leaves uint64.
PRIME = np.uint64(4294967291)
SEED = 20261205

# What is read as source, by suffix (lower case); anything else is data, an image or a binary.
SOURCE_SUFFIXES = {
    ".py": "python", ".ipynb": "notebook", ".r": "r", ".jl": "julia", ".m": "matlab", ".js": "javascript",
    ".ts": "javascript", ".java": "java", ".scala": "java", ".kt": "java", ".c": "c", ".h": "c", ".cc": "c",
    ".cpp": "c", ".hpp": "c", ".cs": "c", ".go": "c", ".rs": "c", ".sh": "shell", ".bash": "shell",
    ".sql": "sql", ".rb": "ruby", ".lua": "lua", ".pyx": "python",
}
NOTEBOOK_LANGUAGES = {"python": "python", "r": "r", "julia": "julia"}
# Kept as themselves by the regular-expression tokenizer (the words of the languages above).
OTHER_KEYWORDS = frozenset("""
    if else elif for while do in function return break next continue repeat end begin let local
    class def struct module import using library require from public private static void int float
    double char bool true false null nil none TRUE FALSE NULL NA Inf NaN new try catch finally throw
    switch case default const var fn mut pub impl match select where and or not then
""".split())


class UnreadableSubmission(Exception):
    """The file cannot be read at all (not a zip, over a cap that refuses the whole file)."""


@dataclass(frozen=True)
class ReadLimits:
    """Caps of reading one submission's file for similarity (smaller than the worker's unpack caps: only code counts)."""

    max_file_bytes: int = 50 * 1024**2  # the submitted file itself
    max_members: int = 5000  # entries of a zip
    # Source read from one zip in all, and per file: Python's tokenizer reads about 1 MB a second
    # of dense code, so these bound one submission's signing to seconds.
    max_total_bytes: int = 8 * 1024**2
    max_member_bytes: int = 1024**2
    max_units: int = 2000  # cells and files kept


@dataclass
class Unit:
    """One cell or one file: where it came from, its language and its text."""

    name: str
    language: str
    text: str


@dataclass
class Sources:
    """The source units of one file, and what was left out of them (sentences for organizers)."""

    units: list[Unit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# -- reading ----------------------------------------------------------------------------------------
def read_sources(data: bytes, filename: str, limits: ReadLimits = ReadLimits()) -> Sources:
    """The source units of a submitted file: a zip, a notebook or one source file.

    Raises `UnreadableSubmission` when nothing may be read (over `max_file_bytes`,
    a damaged zip, a zip whose members exceed `max_members` or would unpack past
    `max_total_bytes`); members that are links, escape the archive or exceed
    `max_member_bytes` are left out and named in `skipped`.
    """
    if len(data) > limits.max_file_bytes:
        raise UnreadableSubmission(f"{filename} is {len(data)} bytes, over the {limits.max_file_bytes} bytes read "
                                   "for similarity")
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix == ".ipynb":
        out = Sources()
        out.units += notebook_units(data, filename, out.skipped)
        return out
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _zip_sources(data, filename, limits)
    if suffix == ".zip":
        raise UnreadableSubmission(f"{filename} is not a readable zip")
    out = Sources()
    language = SOURCE_SUFFIXES.get(suffix)
    if language is None:
        out.skipped.append(f"{filename}: not a zip, a notebook or a source file")
    else:
        text = _text(data)
        if text is None:
            out.skipped.append(f"{filename}: binary, not read")
        else:
            out.units.append(Unit(filename, language, text))
    return out


def _zip_sources(data: bytes, filename: str, limits: ReadLimits) -> Sources:
    out = Sources()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise UnreadableSubmission(f"{filename} is not a readable zip: {exc}") from None
    if len(infos) > limits.max_members:
        raise UnreadableSubmission(f"{filename} holds {len(infos)} entries, over the {limits.max_members} read "
                                   "for similarity")
    chosen = []
    declared = 0
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        path = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
            out.skipped.append(f"{name[:200]}: a name outside the archive, not read")
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            out.skipped.append(f"{name[:200]}: a symbolic link, not followed")
            continue
        if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
            continue  # hidden files and macOS resource forks are no one's code
        language = SOURCE_SUFFIXES.get(path.suffix.lower())
        if language is None:
            continue  # data, images, binaries: not code
        if info.file_size > limits.max_member_bytes:
            out.skipped.append(f"{name[:200]}: {info.file_size} bytes, over the {limits.max_member_bytes} bytes "
                               "read per file")
            continue
        declared += info.file_size
        chosen.append((info, language))
    if declared > limits.max_total_bytes:
        raise UnreadableSubmission(f"{filename}: its source files would unpack to {declared} bytes, over the "
                                   f"{limits.max_total_bytes} bytes read for similarity")
    total = 0
    for info, language in sorted(chosen, key=lambda c: c[0].filename):
        try:
            with zf.open(info) as fh:
                # The declared size may lie: never read past the caps whatever it says.
                blob = fh.read(min(limits.max_member_bytes, limits.max_total_bytes - total) + 1)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError) as exc:
            out.skipped.append(f"{info.filename[:200]}: unreadable ({exc})")
            continue
        if len(blob) > limits.max_member_bytes:
            out.skipped.append(f"{info.filename[:200]}: over the {limits.max_member_bytes} bytes read per file "
                               "(its declared size was false)")
            continue
        total += len(blob)
        if total > limits.max_total_bytes:
            raise UnreadableSubmission(f"{filename}: its source files unpack past the {limits.max_total_bytes} "
                                       "bytes read for similarity (their declared sizes were false)")
        if language == "notebook":
            out.units += notebook_units(blob, info.filename, out.skipped)
            continue
        text = _text(blob)
        if text is None:
            out.skipped.append(f"{info.filename[:200]}: binary, not read")
            continue
        out.units.append(Unit(info.filename, language, text))
        if len(out.units) > limits.max_units:
            out.skipped.append(f"more than {limits.max_units} files and cells: the rest not read")
            out.units = out.units[: limits.max_units]
            break
    return out


def notebook_units(data: bytes, name: str, skipped: list[str]) -> list[Unit]:
    """A notebook's code cells, one unit each (its language from the kernel's metadata)."""
    try:
        doc = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError as exc:
        skipped.append(f"{name[:200]}: not a notebook ({exc})")
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        skipped.append(f"{name[:200]}: not a notebook (no cells)")
        return []
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    info = meta.get("kernelspec") or meta.get("language_info") or {}
    language = str(info.get("language") or info.get("name") or "python").lower() if isinstance(info, dict) else "python"
    language = NOTEBOOK_LANGUAGES.get(language, language if language in SOURCE_SUFFIXES.values() else "other")
    units = []
    for index, cell in enumerate(doc["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str) and source.strip():
            units.append(Unit(f"{name}#cell{index + 1}", language, source))
    return units


def _text(blob: bytes) -> Optional[str]:
    if b"\0" in blob[:8192]:
        return None
    return blob.decode("utf-8", errors="replace")


# -- normalizing ------------------------------------------------------------------------------------
_MAGIC = re.compile(r"^\s*[%!].*$", re.M)
_SKIP_PY = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
IDENT, NUMBER, STRING = "ID", "NUM", "STR"


def normalize(text: str, language: str) -> list[list[str]]:
    """The unit's tokens, line by line: identifiers `ID`, numbers `NUM`, strings `STR`, the rest as written."""
    if language in ("python", "notebook"):
        lines = _python_tokens(_MAGIC.sub("", text))
        if lines is not None:
            return lines
    return _regex_tokens(text, language)


def _python_tokens(text: str) -> Optional[list[list[str]]]:
    lines: dict[int, list[str]] = {}
    in_fstring = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _SKIP_PY:
                continue
            if tok.type in _FSTRING:
                # An f-string is one literal, whatever it holds.
                if tok.type == getattr(tokenize, "FSTRING_START", None):
                    if in_fstring == 0:
                        lines.setdefault(tok.start[0], []).append(STRING)
                    in_fstring += 1
                elif tok.type == getattr(tokenize, "FSTRING_END", None):
                    in_fstring -= 1
                continue
            if in_fstring:
                continue
            if tok.type == tokenize.NAME:
                value = tok.string if keyword.iskeyword(tok.string) else IDENT
            elif tok.type == tokenize.NUMBER:
                value = NUMBER
            elif tok.type == tokenize.STRING:
                value = STRING
            elif tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
                continue
            elif tok.type == tokenize.ERRORTOKEN and tok.string[:1] in ("'", '"'):
                # An unterminated string: tokenize would rescan the rest of its line at every
                # character after it (quadratic on a hostile line); the regular expression does not.
                return None
            else:
                value = tok.string
            lines.setdefault(tok.start[0], []).append(value)
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        return None
    return [lines[n] for n in sorted(lines)]


_REGEX = re.compile(r"""
    (?P<comment>/\*(?:.*?\*/|.*\Z)|//[^\n]*|\#[^\n]*|--[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*+(?:"|\\?$)|'(?:\\.|[^'\\\n])*+(?:'|\\?$)|`(?:\\.|[^`\\\n])*+(?:`|\\?$))
  | (?P<number>\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<newline>\n)
  | (?P<op><-|->|<=|>=|==|!=|&&|\|\||::|\+=|-=|\*=|/=|%%|\S)
""", re.X | re.S | re.M)
# `--` starts a comment in SQL and Lua only; `#` not in C-like code (preprocessor lines are code there).
_COMMENTS = {"sql": ("--", "#", "/*"), "lua": ("--",), "c": ("//", "/*"), "java": ("//", "/*"),
             "javascript": ("//", "/*")}


def _regex_tokens(text: str, language: str) -> list[list[str]]:
    comments = _COMMENTS.get(language, ("#",))
    lines: list[list[str]] = [[]]
    for found in _REGEX.finditer(text):
        kind, value = found.lastgroup, found.group()
        if kind == "comment":
            if value.startswith(comments):
                lines.extend([] for _ in range(value.count("\n")))
                continue
            # Not a comment in this language: its first sign, then tokens as any other code.
            lines[-1].append(value[0])
            lines[-1] += [tok for line in _regex_tokens(value[1:], language) for tok in line]
            continue
        if kind == "newline":
            lines.append([])
        elif kind == "string":
            lines[-1].append(STRING)
        elif kind == "number":
            lines[-1].append(NUMBER)
        elif kind == "name":
            lines[-1].append(value if value in OTHER_KEYWORDS else IDENT)
        else:
            lines[-1].append(value)
    return [line for line in lines if line]


# -- shingles and signatures ------------------------------------------------------------------------
def unit_tokens(unit: Unit) -> list[str]:
    return [tok for line in normalize(unit.text, unit.language) for tok in line]


def shingles(units: Iterable[Unit], size: int = SHINGLE) -> set[int]:
    """The 32-bit hashes of each unit's runs of `size` tokens (a shorter unit: one shingle of all of it)."""
    out: set[int] = set()
    for unit in units:
        tokens = unit_tokens(unit)
        if not tokens:
            continue
        if len(tokens) < size:
            out.add(_hash32(" ".join(tokens)))
            continue
        for i in range(len(tokens) - size + 1):
            out.add(_hash32(" ".join(tokens[i:i + size])))
    return out


def _hash32(text: str) -> int:
    # Stable across processes (Python's own str hash is salted per process).
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def _permutations(count: int = PERMUTATIONS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(PRIME), size=count, dtype=np.uint64)
    b = rng.integers(0, int(PRIME), size=count, dtype=np.uint64)
    return a, b


_A, _B = _permutations()


def signature(hashes: Iterable[int]) -> Optional[np.ndarray]:
    """The MinHash signature (uint32 x PERMUTATIONS) of a set of shingle hashes; None for an empty set."""
    values = np.fromiter(hashes, dtype=np.uint64)
    if values.size == 0:
        return None
    values %= PRIME
    mins = np.empty(PERMUTATIONS, dtype=np.uint64)
    # In blocks, so that a big submission costs bounded memory (block x PERMUTATIONS uint64).
    mins.fill(PRIME)
    for start in range(0, values.size, 4096):
        block = values[start:start + 4096]
        hashed = (np.outer(block, _A) + _B) % PRIME
        np.minimum(mins, hashed.min(axis=0), out=mins)
    return mins.astype(np.uint32)


def similarity(a: np.ndarray | list[int], b: np.ndarray | list[int]) -> float:
    """The Jaccard similarity two signatures estimate."""
    a, b = np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)
    return float(np.mean(a == b))


def similarities(matrix: np.ndarray, one: np.ndarray | list[int]) -> np.ndarray:
    """The estimate of `one` against each row of `matrix` (n x PERMUTATIONS), at once."""
    if matrix.size == 0:
        return np.zeros(0)
    return (matrix == np.asarray(one, dtype=np.uint32)).mean(axis=1)


def jaccard(a: set[int], b: set[int]) -> float:
    """The exact Jaccard similarity of two shingle sets (what a signature estimates)."""
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass
class Signed:
    """A submission's reading: its signature (None: nothing to compare), shingle count, what was left out."""

    signature: Optional[np.ndarray]
    shingles: int
    skipped: list[str]
    units: int

    @property
    def error(self) -> Optional[str]:
        """What organizers are told about this reading (None: all of it read and signed)."""
        notes = list(self.skipped)
        if self.signature is None:
            notes.insert(0, "no source code to compare" + (" beyond the starting kit" if self.units else ""))
        return "; ".join(notes)[:4000] if notes else None


def sign(data: bytes, filename: str, kit: set[int] = frozenset(), limits: ReadLimits = ReadLimits()) -> Signed:
    """Read, normalize, shingle (less the kit's shingles) and sign one submitted file.

    Raises `UnreadableSubmission` as `read_sources` does.
    """
    sources = read_sources(data, filename, limits)
    own = shingles(sources.units) - set(kit)
    return Signed(signature(own), len(own), sources.skipped, len(sources.units))


def kit_shingles(files: Iterable[tuple[bytes, str]], limits: ReadLimits = ReadLimits()) -> tuple[set[int], list[str]]:
    """The shingles of the starting kit and solutions (files as (bytes, name)); problems as sentences."""
    out: set[int] = set()
    problems: list[str] = []
    for data, name in files:
        try:
            sources = read_sources(data, name, limits)
        except UnreadableSubmission as exc:
            problems.append(str(exc))
            continue
        out |= shingles(sources.units)
    return out, problems


def normalized_text(data: bytes, filename: str, limits: ReadLimits = ReadLimits()) -> tuple[str, str]:
    """(source as read, normalized source) of a file, unit by unit with a header line each, for a diff."""
    try:
        sources = read_sources(data, filename, limits)
    except UnreadableSubmission as exc:
        return f"# {exc}\n", f"# {exc}\n"
    raw, norm = [], []
    for unit in sources.units:
        raw.append(f"### {unit.name}\n{unit.text.rstrip()}\n")
        norm.append(f"### {unit.name}\n" + "".join(" ".join(line) + "\n" for line in normalize(unit.text, unit.language)))
    for note in sources.skipped:
        raw.append(f"### left out: {note}\n")
        norm.append(f"### left out: {note}\n")
    return "".join(raw), "".join(norm)


def side_by_side(left: str, right: str, *, max_lines: int = 4000) -> list[dict[str, object]]:
    """Rows of a side-by-side diff of two texts: {"tag", "left", "right", "left_no", "right_no"}.

    `tag` is equal, replace, delete or insert (difflib's opcodes); the texts are
    plain (whoever shows them escapes them).  Each side is cut at `max_lines`.
    """
    import difflib  # only organizers reading a pair need it

    a, b = left.splitlines()[:max_lines], right.splitlines()[:max_lines]
    rows: list[dict[str, object]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            rows.append({"tag": tag,
                         "left": a[i] if i < i2 else None, "left_no": i + 1 if i < i2 else None,
                         "right": b[j] if j < j2 else None, "right_no": j + 1 if j < j2 else None})
    return rows
