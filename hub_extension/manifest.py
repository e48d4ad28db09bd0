"""Signed manifests: a submission's record in a form anyone holding the platform's key can check later.

A manifest is JSON written in one canonical form (keys sorted, compact
separators, UTF-8): `{"manifest": {...}, "signature": {"algorithm":
"HMAC-SHA256", "value": <hex>}}`, the value being HMAC-SHA256 of the
canonical bytes of `manifest` under the key kept in the platform's home
(`manifest_key`, 32 random bytes as hex, created mode 0600 on first use).

`verify` checks a manifest file byte for byte: it must be the canonical form
of what it holds (a trailing newline aside) and carry the right signature,
so that changing any single byte of it is seen.  Standard library only: an
organizer verifies a manifest on any machine with the key file.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

KEY_FILE = "manifest_key"
ALGORITHM = "HMAC-SHA256"
# A manifest file larger than this is not read.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class ManifestError(ValueError):
    """A manifest or key that cannot be used at all (not JSON, not a manifest, no key)."""


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_path(home: Union[str, os.PathLike]) -> Path:
    return Path(home) / KEY_FILE


def load_key(home: Union[str, os.PathLike], *, create: bool = True) -> bytes:
    """The platform's manifest key, kept in `home` (created, mode 0600, on first use when `create`)."""
    path = key_path(home)
    if path.exists() or not create:
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        # A link fails when another process made the key first: then that key is the key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_key(path)


def read_key(path: Union[str, os.PathLike]) -> bytes:
    """The key in a key file (hex); ManifestError saying what is wrong otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise ManifestError(f"no manifest key at {path}: give the platform's key file (<home>/{KEY_FILE})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{path} is not a manifest key (64 hex digits): {exc}") from None
    if len(key) < 32:
        raise ManifestError(f"{path} is not a manifest key: it holds {len(key)} bytes, a key has 32")
    return key


def signature_of(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(manifest), hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The signed document of `manifest`."""
    return {"manifest": manifest, "signature": {"algorithm": ALGORITHM, "value": signature_of(manifest, key)}}


def document_bytes(document: dict[str, Any]) -> bytes:
    """How a signed document is written to a file: its canonical form and a newline."""
    return canonical(document) + b"\n"


@dataclass
class Verdict:
    valid: bool
    message: str


def verify_bytes(data: bytes, key: bytes) -> Verdict:
    """Check a manifest file's bytes; ManifestError when they are not a signed manifest at all."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the file holds {len(data)} bytes, more than a manifest ({MAX_MANIFEST_BYTES})")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"the file is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("manifest"), dict) \
            or not isinstance(document.get("signature"), dict):
        raise ManifestError('the file is not a signed manifest: expected {"manifest": {...}, "signature": {...}}')
    signature = document["signature"]
    if signature.get("algorithm") != ALGORITHM:
        return Verdict(False, f"unknown signature algorithm {signature.get('algorithm')!r}; expected {ALGORITHM}")
    value = signature.get("value")
    if not isinstance(value, str):
        return Verdict(False, "the signature has no value")
    try:
        expected = signature_of(document["manifest"], key)
    except ValueError as exc:  # a number JSON cannot write back (NaN)
        return Verdict(False, f"the manifest cannot be written canonically: {exc}")
    if not hmac.compare_digest(expected, value):
        return Verdict(False, "the signature does not match: the manifest was changed, or signed with another key")
    if data.rstrip(b"\n") != canonical(document):
        return Verdict(False, "the file is not in canonical form (sorted keys, compact separators): "
                              "it was changed after it was signed")
    sub = document["manifest"].get("submission") or {}
    return Verdict(True, f"valid: submission {sub.get('id', '?')} signed with {ALGORITHM}")


def verify_file(path: Union[str, os.PathLike], key: bytes) -> Verdict:
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            raise ManifestError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path} is larger than a manifest ({MAX_MANIFEST_BYTES} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    return verify_bytes(data, key)


def default_key_file(home: Optional[str]) -> Optional[Path]:
    return key_path(home) if home else None
