"""Per-run data links: how a worker that does not share the platform's store fetches a run's datasets.

When the dispatcher sends a run to a queue whose workers cannot read the
store's folder, the job names each dataset by its content key and gives,
for each, a URL the worker fetches it from (`Job.data_urls`).  For a store
whose backend signs its own URLs (an object store's presigned URLs) that
URL comes from the store; otherwise it is the competitions service's
`GET <public_url>api/v1/runs/<token>/data/<key>`
(`hub_extension.service.run_data`).

The token is signed by the platform (HMAC-SHA256 with a secret kept in the
platform's home, `run_data_secret`, made on first use and shared by every
process of the platform) and says which run it was made for (submission,
the Dask key of the attempt) and which dataset keys that run may read.
It is only a claim: the service also checks on every request that the run
is still that attempt and not final.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from .contract import StoreLayout

SECRET_FILE = "run_data_secret"


class LinkError(ValueError):
    """A token that is not one the platform signed, or that does not say what a link needs."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(home: str | os.PathLike) -> bytes:
    """The platform's signing key of data links, kept in `home` (created, mode 0600, on first use)."""
    path = Path(home) / SECRET_FILE
    try:
        data = bytes.fromhex(path.read_text().strip())
        if len(data) >= 32:
            return data
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data.hex())
    try:
        # Two processes making it at once: the first one written wins, both read it back.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


@dataclass(frozen=True)
class RunGrant:
    """What a token grants: the datasets `keys` of the attempt `dispatch_key` of submission `submission_id`."""

    submission_id: int
    dispatch_key: str
    keys: frozenset[str]


class RunDataSigner:
    """Signs and checks the tokens of per-run data links."""

    def __init__(self, secret: bytes):
        self._secret = secret

    @classmethod
    def for_home(cls, home: str | os.PathLike) -> "RunDataSigner":
        return cls(load_secret(home))

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, b"run-data/1:" + payload.encode(), hashlib.sha256).digest())

    def token(self, submission_id: int, dispatch_key: str, keys: Iterable[str]) -> str:
        keys = sorted(set(keys))
        bad = [k for k in keys if not StoreLayout.is_dataset_key(k)]
        if bad:
            raise LinkError(f"not dataset keys: {bad}")
        payload = _b64(json.dumps({"s": int(submission_id), "k": str(dispatch_key), "d": keys},
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> RunGrant:
        """The grant of a token this platform signed; `LinkError` for anything else."""
        payload, _, mac = (token or "").partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise LinkError("this link was not issued by the platform")
        try:
            data = json.loads(_unb64(payload))
            return RunGrant(int(data["s"]), str(data["k"]), frozenset(str(k) for k in data["d"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise LinkError(f"a malformed link ({exc})") from None


def run_data_url(public_url: str, token: str, key: str) -> str:
    """The service URL of dataset `key` for the run of `token`; `public_url` is the service's root URL."""
    return f"{public_url.rstrip('/')}/api/v1/runs/{token}/data/{key}"


def service_links(public_url: Optional[str], home: str | os.PathLike, submission_id: int, dispatch_key: str,
                  keys: Iterable[str]) -> dict[str, str]:
    """Key -> service URL of each dataset of a run (empty without a `public_url`)."""
    keys = list(dict.fromkeys(keys))
    if not public_url or not keys:
        return {}
    token = RunDataSigner.for_home(home).token(submission_id, dispatch_key, keys)
    return {key: run_data_url(public_url, token, key) for key in keys}
