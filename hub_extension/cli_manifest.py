"""`compete manifest get|verify`, `compete submission reproduce` and `compete competition reproduce-top`.

`manifest get ID [-o FILE]` writes a submission's signed manifest (canonical
JSON, see `hub_extension.manifest`); `manifest verify FILE [--key KEYFILE]
[--public-key FILE]` checks one byte for byte against the platform's key
(`<home>/manifest_key` unless `--key` names another), or against its
published public key (`manifest public-key`): exit 0 when it is valid, 1
when it is not (a byte changed, another key), 2 when the input cannot be
used (not a manifest, no key).  Verifying needs no database: any machine
with the key file, or anyone with the public key, checks a manifest.

`submission reproduce ID [--queue Q]` makes a reproduction pinned to what the
submission ran with; `competition reproduce-top SLUG --phase I --top N`
reproduces the top N of a phase's primary board.  Both print the new
submissions as JSON (run them with `compete run-pending` or the dispatcher).

This module holds only the command tree and imports the platform when a
command that needs it runs (see `cli.server_command`).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

# Exit codes of `manifest verify`.
VALID, INVALID, UNUSABLE = 0, 1, 2


def _subcommands(sub: argparse._SubParsersAction, name: str) -> argparse._SubParsersAction:
    """The actions of the command `name` already in the tree (`submission`, `competition`)."""
    parser = sub.choices[name]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .cli import _actions, server_command

    mf = _actions(sub, "manifest", "signed manifests of submissions: get one, verify one")
    p = mf.add_parser("get", help="write a submission's signed manifest (canonical JSON)")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=server_command("cli_manifest:cmd_manifest_get"))
    p = mf.add_parser("verify", help="check a manifest file: exit 0 valid, 1 invalid, 2 unusable input")
    p.add_argument("file")
    p.add_argument("--key", default=None, help="the key file (default: <home>/manifest_key)")
    p.add_argument("--public-key", default=None, metavar="FILE",
                   help="check with the platform's published public key instead (PEM or hex, from "
                        "`compete manifest public-key` or GET /api/v1/manifest-key): no secret needed")
    p.set_defaults(func=cmd_manifest_verify)
    p = mf.add_parser("public-key", help="the public key manifests are signed with (PEM), to publish")
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=cmd_manifest_public_key)

    p = _subcommands(sub, "submission").add_parser(
        "reproduce", help="run a finished submission again pinned to the image digests, programs and data it ran "
                          "with (off the boards and the limits); prints the reproduction as JSON")
    p.add_argument("id", type=int)
    p.add_argument("--queue", default=None, help="queue to run it on (default: the phase's)")
    p.set_defaults(func=server_command("cli_manifest:cmd_reproduce"))

    p = _subcommands(sub, "competition").add_parser(
        "reproduce-top", help="reproduce the top N submissions of a phase's primary board; prints them as JSON")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, required=True, help="phase number, 1 for the first")
    p.add_argument("--top", type=int, required=True, help="how many, from 1 to 100")
    p.add_argument("--queue", default=None, help="queue to run them on (default: the phase's)")
    p.set_defaults(func=server_command("cli_manifest:cmd_reproduce_top"))


def cmd_manifest_get(args: argparse.Namespace) -> int:
    from . import manifest as signing
    from .app import LOCAL_ADMIN
    from .cli_common import platform

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
    from .manifest import KEY_FILE

    if args.key:
        return Path(args.key)
    return Path(_home(args)) / KEY_FILE


def _home(args: argparse.Namespace) -> str:
    home = args.home
    if not home:
        try:
            from .config import load_config

            home = load_config(home=None, db_url=None).compete.home
        except Exception:  # noqa: BLE001 - without a configuration, the environment's home
            home = os.environ.get("COMPETE_HOME")
    if not home:
        raise FileNotFoundError("no platform home: give the key file with --key")
    return home


def cmd_manifest_public_key(args: argparse.Namespace) -> int:
    from .manifest import ManifestError, load_signing_key, public_key_pem

    try:
        pem = public_key_pem(load_signing_key(_home(args)))
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
    from .manifest import ManifestError, read_key, read_public_key, verify_file

    try:
        public = read_public_key(args.public_key) if args.public_key else None
        # With a public key alone, no secret is needed; --key adds the platform's own check.
        key = read_key(_key_file(args)) if public is None or args.key else None
        verdict = verify_file(args.file, key, public)
    except (ManifestError, FileNotFoundError) as exc:
        print(f"unusable: {exc}", file=sys.stderr)
        return UNUSABLE
    if verdict.valid:
        print(verdict.message)
        return VALID
    print(f"invalid: {verdict.message}", file=sys.stderr)
    return INVALID


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .app import LOCAL_ADMIN
    from .cli_common import platform, print_json

    plat = platform(args)
    try:
        print_json(plat.reproduce(args.id, LOCAL_ADMIN, queue=args.queue))
    finally:
        plat.close()
    return 0


def cmd_reproduce_top(args: argparse.Namespace) -> Optional[int]:
    from .app import LOCAL_ADMIN
    from .cli_common import platform, print_json

    plat = platform(args)
    try:
        done = plat.reproduce_top(args.slug, args.phase, args.top, LOCAL_ADMIN, queue=args.queue)
    finally:
        plat.close()
    print_json(done)
    return 0


__all__ = ["INVALID", "UNUSABLE", "VALID", "add_commands"]
