"""Signed manifests: a submission's record in a form that can be checked later, by the platform and by anyone.

A manifest is JSON written in one canonical form (keys sorted, compact
separators, UTF-8): `{"manifest": {...}, "signature": {"algorithm":
"HMAC-SHA256", "value": <hex>}, "public_signature": {"algorithm": "Ed25519",
"public_key": <hex>, "value": <hex>}}`.

- `signature` is HMAC-SHA256 of the canonical bytes of `manifest` under the
  key kept in the platform's home (`manifest_key`, 32 random bytes as hex,
  created mode 0600 on first use): only who holds that key can check it.
- `public_signature` is Ed25519 over the canonical bytes of `{"manifest",
  "signature"}` under the platform's signing key (`manifest_signing_key.pem`,
  created mode 0600 on first use); its public key is published
  (`GET /api/v1/manifest-key`, `compete manifest public-key`), so that
  participants, sponsors or a jury check a manifest without any secret.

`verify` checks a manifest file byte for byte: it must be the canonical form
of what it holds (a trailing newline aside) and carry right signatures, so
that changing any single byte of it is seen, whichever key checks it.
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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "manifest_key"
ALGORITHM = "HMAC-SHA256"
SIGNING_KEY_FILE = "manifest_signing_key.pem"
PUBLIC_ALGORITHM = "Ed25519"
# A manifest file larger than this is not read; nor more of a key file than this.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_KEY_FILE_BYTES = 4096


class ManifestError(ValueError):
    """A manifest or key that cannot be used at all (not JSON, not a manifest, no key)."""


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_path(home: Union[str, os.PathLike]) -> Path:
    return Path(home) / KEY_FILE


def _made_once(path: Path, content: bytes) -> None:
    """Write `content` to `path`, mode 0600, unless a file is there already (made by another process first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    try:
        # A link fails when another process made the key first: then that key is the key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def load_key(home: Union[str, os.PathLike], *, create: bool = True) -> bytes:
    """The platform's manifest key, kept in `home` (created, mode 0600, on first use when `create`)."""
    path = key_path(home)
    if not path.exists() and create:
        _made_once(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    return read_key(path)


def load_signing_key(home: Union[str, os.PathLike]) -> Ed25519PrivateKey:
    """The platform's Ed25519 signing key, kept in `home` (created, mode 0600, on first use)."""
    path = Path(home) / SIGNING_KEY_FILE
    if not path.exists():
        made = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _made_once(path, made)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ManifestError(f"{path} is not an Ed25519 signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ManifestError(f"{path} is not an Ed25519 signing key")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The raw public key (32 bytes) of a signing key, as hex."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def read_public_key(path: Union[str, os.PathLike]) -> bytes:
    """A published public key from a file: PEM (`compete manifest public-key`) or 64 hex digits; raw bytes."""
    path = Path(path)
    try:
        data = path.read_bytes()[:MAX_KEY_FILE_BYTES]
    except OSError as exc:
        raise ManifestError(f"cannot read the public key {path}: {exc}") from None
    text = data.decode("ascii", "replace").strip()
    if text.startswith("-----BEGIN PUBLIC KEY-----"):
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise ManifestError(f"{path} is not a public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ManifestError(f"{path} is not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ManifestError(f"{path} is not an Ed25519 public key (PEM, or 64 hex digits)")
    return raw


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


def _publicly_signed(document: dict[str, Any]) -> bytes:
    """What the Ed25519 signature covers: the manifest and its HMAC signature."""
    return canonical({"manifest": document["manifest"], "signature": document["signature"]})


def sign(manifest: dict[str, Any], key: bytes, signing_key: Optional[Ed25519PrivateKey] = None) -> dict[str, Any]:
    """The signed document of `manifest` (with a public signature too when `signing_key` is given)."""
    document: dict[str, Any] = {"manifest": manifest,
                                "signature": {"algorithm": ALGORITHM, "value": signature_of(manifest, key)}}
    if signing_key is not None:
        document["public_signature"] = {"algorithm": PUBLIC_ALGORITHM, "public_key": public_key_hex(signing_key),
                                        "value": signing_key.sign(_publicly_signed(document)).hex()}
    return document


def document_bytes(document: dict[str, Any]) -> bytes:
    """How a signed document is written to a file: its canonical form and a newline."""
    return canonical(document) + b"\n"


@dataclass
class Verdict:
    valid: bool
    message: str


def _public_verdict(document: dict[str, Any], public_key: Optional[bytes]) -> Optional[str]:
    """Why the document's public signature fails (None when it holds, or there is none and none is asked)."""
    public = document.get("public_signature")
    if public is None:
        return None if public_key is None else "the manifest has no public signature (Ed25519) to check"
    if not isinstance(public, dict) or public.get("algorithm") != PUBLIC_ALGORITHM:
        return f"unknown public signature; expected {PUBLIC_ALGORITHM}"
    try:
        embedded = bytes.fromhex(str(public.get("public_key")))
        value = bytes.fromhex(str(public.get("value")))
    except ValueError:
        return "the public signature is not hex"
    if public_key is not None and embedded != public_key:
        return "the manifest was signed with another key than the public key given"
    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(value, _publicly_signed(document))
    except (ValueError, InvalidSignature):
        return "the public signature does not match: the manifest was changed"
    return None


def verify_bytes(data: bytes, key: Optional[bytes], public_key: Optional[bytes] = None) -> Verdict:
    """Check a manifest file's bytes with the platform's key, or its published public key, or both;
    ManifestError when they are not a signed manifest at all."""
    if key is None and public_key is None:
        raise ManifestError("nothing to check the manifest with: give the platform's key or its public key")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the file holds {len(data)} bytes, more than a manifest ({MAX_MANIFEST_BYTES})")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"the file is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("manifest"), dict) \
            or not isinstance(document.get("signature"), dict):
        raise ManifestError('the file is not a signed manifest: expected {"manifest": {...}, "signature": {...}}')
    if set(document) - {"manifest", "signature", "public_signature"}:
        return Verdict(False, f"unknown parts {sorted(set(document) - {'manifest', 'signature', 'public_signature'})}")
    signature = document["signature"]
    if signature.get("algorithm") != ALGORITHM:
        return Verdict(False, f"unknown signature algorithm {signature.get('algorithm')!r}; expected {ALGORITHM}")
    value = signature.get("value")
    if not isinstance(value, str):
        return Verdict(False, "the signature has no value")
    checked = []
    if key is not None:
        try:
            expected = signature_of(document["manifest"], key)
        except ValueError as exc:  # a number JSON cannot write back (NaN)
            return Verdict(False, f"the manifest cannot be written canonically: {exc}")
        if not hmac.compare_digest(expected, value):
            return Verdict(False, "the signature does not match: the manifest was changed, or signed with another key")
        checked.append(ALGORITHM)
    try:
        failed = _public_verdict(document, public_key)
    except ValueError as exc:
        return Verdict(False, f"the manifest cannot be written canonically: {exc}")
    if failed:
        return Verdict(False, failed)
    if "public_signature" in document:
        checked.append(PUBLIC_ALGORITHM + (" (the public key given)" if public_key is not None else ""))
    if data.rstrip(b"\n") != canonical(document):
        return Verdict(False, "the file is not in canonical form (sorted keys, compact separators): "
                              "it was changed after it was signed")
    sub = document["manifest"].get("submission") or {}
    return Verdict(True, f"valid: submission {sub.get('id', '?')} signed with {' and '.join(checked)}")


def verify_file(path: Union[str, os.PathLike], key: Optional[bytes], public_key: Optional[bytes] = None) -> Verdict:
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            raise ManifestError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path} is larger than a manifest ({MAX_MANIFEST_BYTES} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    return verify_bytes(data, key, public_key)


def default_key_file(home: Optional[str]) -> Optional[Path]:
    return key_path(home) if home else None
