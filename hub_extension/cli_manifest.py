"""`compete manifest get|verify`, `compete submission reproduce` and `compete competition reproduce-top`.

`manifest get ID [-o FILE]` writes a submission's signed manifest (canonical
JSON, see `hub_extension.manifest`); `manifest verify FILE [--key KEYFILE]
[--public-key FILE]` checks one byte for byte against the platform's key
(`<home>/manifest_key` unless `--key` names another), or against its
published public key (`manifest public-key`): exit 0 when it is valid, 1
when it is not (a byte changed, another key), 2 when the input cannot be
used (not a manifest, no key).  Verifying needs no database: any machine
with the server's packages (`pip install "jupyter-compete[server]"`) and the
key file, or the public key, checks a manifest.

`submission reproduce ID [--queue Q]` makes a reproduction pinned to what the
submission ran with; `competition reproduce-top SLUG --phase I --top N`
reproduces the top N of a phase's primary board.  Both print the new
submissions as JSON (run them with `compete run-pending` or the dispatcher).

The command tree is in `cli`; this module is imported when one of these
commands runs (`cli.server_command`).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from . import manifest as signing
from .app import LOCAL_ADMIN
from .cli_common import platform, print_json
from .config import load_config
from .manifest import KEY_FILE, ManifestError

# Exit codes of `manifest verify`.
VALID, INVALID, UNUSABLE = 0, 1, 2


def cmd_manifest_get(args: argparse.Namespace) -> int:
    plat = platform(args)
    try:
        data = signing.document_bytes(plat.submission_manifest(args.id, LOCAL_ADMIN))
    finally:
        plat.close()
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote the signed manifest of submission {args.id} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def _key_file(args: argparse.Namespace) -> Path:
    if args.key:
        return Path(args.key)
    return Path(_home(args)) / KEY_FILE


def _home(args: argparse.Namespace) -> str:
    home = args.home
    if not home:
        try:
            home = load_config(home=None, db_url=None).compete.home
        except Exception:  # noqa: BLE001 - without a configuration, the environment's home
            home = os.environ.get("COMPETE_HOME")
    if not home:
        raise FileNotFoundError("no platform home: give the key file with --key")
    return home


def cmd_manifest_public_key(args: argparse.Namespace) -> int:
    try:
        pem = signing.public_key_pem(signing.load_signing_key(_home(args)))
    except (ManifestError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return UNUSABLE
    if args.output:
        Path(args.output).write_text(pem)
        print(f"wrote the manifests' public key to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(pem)
    return 0


def cmd_manifest_verify(args: argparse.Namespace) -> int:
    try:
        public = signing.read_public_key(args.public_key) if args.public_key else None
        # With a public key alone, no secret is needed; --key adds the platform's own check.
        key = signing.read_key(_key_file(args)) if public is None or args.key else None
        verdict = signing.verify_file(args.file, key, public)
    except (ManifestError, FileNotFoundError) as exc:
        print(f"unusable: {exc}", file=sys.stderr)
        return UNUSABLE
    if verdict.valid:
        print(verdict.message)
        return VALID
    print(f"invalid: {verdict.message}", file=sys.stderr)
    return INVALID


def cmd_reproduce(args: argparse.Namespace) -> int:
    plat = platform(args)
    try:
        print_json(plat.reproduce(args.id, LOCAL_ADMIN, queue=args.queue))
    finally:
        plat.close()
    return 0


def cmd_reproduce_top(args: argparse.Namespace) -> Optional[int]:
    plat = platform(args)
    try:
        done = plat.reproduce_top(args.slug, args.phase, args.top, LOCAL_ADMIN, queue=args.queue)
    finally:
        plat.close()
    print_json(done)
    return 0


__all__ = ["INVALID", "UNUSABLE", "VALID"]
