"""`compete competition similarity SLUG`: the organizers' review of code alike, from a terminal.

Lists the pairs at or above `--min` (default `c.Compete.similarity_threshold`)
and what could not be read; `--scan` signs the code and notebook submissions
the service's sweep has not signed yet, now; `--pair ID` shows one pair with a
diff of both sources, and with `--verdict` records the review (`none` clears
it).  The platform's `app.similarity` does the work.
"""
from __future__ import annotations

import argparse
import difflib

from .app import LOCAL_ADMIN
from .cli_common import platform, print_json


def cmd_competition_similarity(args: argparse.Namespace) -> int:
    p = platform(args)
    try:
        if args.scan:
            done = p.scan_similarity(args.slug, LOCAL_ADMIN)
            print(f"{args.slug}: {done['signed']} submission(s) signed ({done['errors']} with an error), "
                  f"{done['pairs']} pair(s) found, {done['pending']} waiting")
        if args.pair is not None:
            if args.verdict is not None:
                verdict = None if args.verdict == "none" else args.verdict
                pair = p.set_similarity_verdict(args.slug, args.pair, verdict, LOCAL_ADMIN)
                print(f"pair {pair['id']}: verdict {pair['verdict'] or 'none'}")
                return 0
            pair = p.similarity_pair(args.slug, args.pair, LOCAL_ADMIN)
            if args.json:
                print_json(pair)
                return 0
            first, second = pair["first"], pair["second"]
            print(f"pair {pair['id']}: {pair['similarity']:.2f}, verdict {pair['verdict'] or 'none'}")
            view = "normalized" if args.normalized else "source"
            diff = difflib.unified_diff(first[view].splitlines(), second[view].splitlines(),
                                        f"{first['username']} #{first['submission_id']}",
                                        f"{second['username']} #{second['submission_id']}", lineterm="")
            for line in diff:
                print(line)
            return 0
        if args.verdict is not None:
            print("error: --verdict needs --pair ID")
            return 2
        listing = p.similarity_pairs(args.slug, LOCAL_ADMIN, args.min)
        if args.json:
            print_json(listing)
            return 0
        print(f"{args.slug}: {listing['signed']} signed, {listing['pending']} waiting; pairs from "
              f"{listing['min']:.2f} (recorded from {listing['threshold']:.2f})")
        for pr in listing["pairs"]:
            a, b = pr["first"], pr["second"]
            print(f"  pair {pr['id']:>5}  {pr['similarity']:.2f}  {a['username']} #{a['submission_id']}  "
                  f"{b['username']} #{b['submission_id']}  {pr['verdict'] or '-'}")
        for e in listing["errors"]:
            print(f"  not read in full: #{e['submission_id']} ({e['username']}): {e['error']}")
        return 0
    finally:
        p.close()
