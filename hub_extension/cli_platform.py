"""`compete bundle`, `competition`, `register`, `leaderboard` and `init`: competitions from the shell.

Output shapes are a contract (README, "The `compete` command"); the parsers
are in hub_extension/cli.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app import LOCAL_ADMIN, Actor
from .app.lifecycle import upload_notice
from .bundles import init_bundle, summarize
from .bundles.model import BundleError
from .cli_common import platform, print_json, print_leaderboard


def cmd_bundle_validate(args: argparse.Namespace) -> int:
    try:
        spec, warnings = platform(args).validate_bundle(args.path)
    except BundleError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(summarize(spec))
    return 0


def cmd_bundle_export(args: argparse.Namespace) -> int:
    out = platform(args).export_competition(args.slug, args.output, light=args.light)
    print(out)
    return 0


def cmd_competition_create(args: argparse.Namespace) -> int:
    plat = platform(args)
    slug, warnings = plat.create_competition(args.path)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    how = f"`compete competition publish {slug}` opens it to everyone"
    print(upload_notice(plat.lifecycle(slug, LOCAL_ADMIN), how), file=sys.stderr)
    print(slug)
    return 0


def cmd_competition_list(args: argparse.Namespace) -> int:
    comps = platform(args).list_competitions()
    if args.json:
        print_json(comps)
        return 0
    if not comps:
        print("no competitions yet: `compete competition create BUNDLE` creates one")
        return 0
    width = max(len(c["slug"]) for c in comps)
    for c in comps:
        lifecycle = "" if c["lifecycle"] == "published" else f" ({c['lifecycle']})"
        print(f"{c['slug']:<{width}}  {c['status']:<9} {c['dialect']:<9} {c['title']}{lifecycle}")
    return 0


LIFECYCLE_ACTIONS = {"publish": "published", "private": "private", "archive": "archived", "draft": "draft"}


def cmd_competition_lifecycle(args: argparse.Namespace) -> int:
    after = platform(args).set_lifecycle(args.slug, LIFECYCLE_ACTIONS[args.lifecycle], LOCAL_ADMIN)
    print(f"{args.slug}: {after['status']}")
    if after["secret"]:
        print(f"secret link: <service>/competitions/{args.slug}?secret={after['secret']}")
    return 0


def cmd_competition_delete(args: argparse.Namespace) -> int:
    done = platform(args).delete_competition(args.slug, args.confirm, LOCAL_ADMIN)
    print(f"{args.slug}: deleted with {done['submissions']} submission(s); {len(done['datasets'])} stored "
          f"dataset(s) no other competition used removed")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    status = platform(args).register(args.slug, args.user, LOCAL_ADMIN)
    print(f"{args.user}: {status}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    actor = Actor(args.as_user) if args.as_user else LOCAL_ADMIN
    board = platform(args).leaderboard(args.slug, args.phase, actor=actor, board=args.board)
    if args.json:
        print_json(board)
        return 0
    print_leaderboard(board)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    init_bundle(Path(args.dir), args.template)
    print(f"wrote a {args.template} bundle in {args.dir}; check it with `compete bundle validate {args.dir}`")
    return 0


def _probing_value(text: str | None, convert):
    """A probing option from the command line: None when not given, "none" turns it off."""
    if text is None or text.lower() == "none":
        return None
    return convert(text)


def cmd_competition_probing(args: argparse.Namespace) -> int:
    """Set what a board shows participants (display precision, the Ladder), as the editor saves it."""
    p = platform(args)
    try:
        precision = _probing_value(args.precision, int)
        step = _probing_value(args.step, float)
    except ValueError:
        print("error: --precision takes a whole number of decimals and --step a number (or none)", file=sys.stderr)
        return 2
    ladder = _probing_value(args.ladder, str)
    edit = p.set_probing(args.slug, args.board, LOCAL_ADMIN, display_precision=precision, ladder=ladder,
                         ladder_step=step)
    for warning in edit.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not edit.saved:
        for problem in edit.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    shown = ", ".join(part for part in (
        f"display precision {precision}" if precision is not None else "",
        f"ladder {ladder}" + (f" (step {step:g})" if step is not None else "") if ladder else "") if part)
    print(f"{args.slug}: board {args.board!r} shows participants "
          + (shown if shown else "the stored scores") + "; organizers see the stored scores")
    return 0
