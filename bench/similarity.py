"""What similarity signals cost: signing one submission, comparing it with every stored signature, one sweep.

    python bench/similarity.py [--stored 10000] [--repeat 20] [--out bench/similarity.json]

Set-up: one competition on SQLite holding `--stored` signed notebook
submissions of 1,000 participants (their signatures made from synthetic
shingle sets of 150 to 600 shingles, a tenth of them near-copies of others,
written by bulk inserts), and a realistic new notebook (40 code cells of
pandas and scikit-learn code, about 200 lines).

Reported, each the median of `--repeat` runs (and the minimum):
- sign: read, normalize, shingle and MinHash the new notebook (`similarity.sign`);
- compare: its signature against all stored ones at once (`similarities`, numpy),
  against the baseline of the exact Jaccard of the same shingle sets in plain
  Python sets (`jaccard` over every stored set), and their ratio;
- sweep: `similarity_sweep` of one new submission through the platform
  (database, store, the competition's matrix), cold (the matrix read from the
  database first) and warm (kept from the pass before).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from hub_extension import models as m  # noqa: E402
from hub_extension import similarity as sim  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Actor, Platform  # noqa: E402
from tests.support.builders import simple_spec  # noqa: E402

STEPS = ["df = pd.read_csv('{f}.csv')\ndf = df.dropna(subset=['{c}'])\n",
         "X = df[['{c}', 'b', 'c']].values\ny = df['{t}'].values\n",
         "model = RandomForestClassifier(n_estimators={n}, max_depth={d})\nmodel.fit(X, y)\n",
         "for k in range({d}):\n    score = cross_val_score(model, X, y, cv=k + 2).mean()\n    print(k, score)\n",
         "pred = model.predict(test[['{c}', 'b', 'c']].fillna(0).values)\n",
         "plt.figure(figsize=({d}, {n}))\nplt.hist(df['{c}'], bins={n})\nplt.title('{t}')\nplt.show()\n",
         "def feature_{f}(frame):\n    out = frame.copy()\n    out['{c}_log'] = np.log1p(out['{c}'])\n"
         "    return out\n"]


def new_notebook(seed: int, cells: int = 40) -> bytes:
    rng = random.Random(seed)
    sources = ["import pandas as pd\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
               "from sklearn.ensemble import RandomForestClassifier\nfrom sklearn.model_selection import cross_val_score\n"]
    for _ in range(cells - 1):
        step = rng.choice(STEPS)
        lines = rng.randint(1, 3)
        sources.append("".join(step.format(f=f"f{rng.randrange(99)}", c=f"c{rng.randrange(99)}",
                                           t=f"t{rng.randrange(9)}", n=rng.randrange(500), d=rng.randrange(2, 12))
                               for _ in range(lines)))
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "python"}},
                       "cells": [{"cell_type": "code", "source": s, "metadata": {}, "outputs": []}
                                 for s in sources]}).encode()


def stored_sets(n: int, rng: random.Random) -> list[set[int]]:
    sets: list[set[int]] = []
    for i in range(n):
        if sets and rng.random() < 0.1:
            base = rng.choice(sets)
            sets.append({h for h in base if rng.random() < 0.9} | {rng.getrandbits(32) for _ in range(20)})
        else:
            sets.append({rng.getrandbits(32) for _ in range(rng.randint(150, 600))})
    return sets


def timings(call, repeat: int) -> dict[str, float]:
    values = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        values.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(values) * 1000, 3), "min_ms": round(min(values) * 1000, 3)}


def fill(platform: Platform, slug: str, sets: list[set[int]]) -> None:
    """One signed notebook submission per set, from 1,000 participants (bulk inserts)."""
    with platform.db.session() as s:
        comp = s.scalar(select(m.Competition).where(m.Competition.slug == slug))
        s.execute(insert(m.Participant), [{"competition_id": comp.id, "username": f"user{i}", "status": m.APPROVED}
                                          for i in range(1000)])
        parts = s.execute(select(m.Participant.id, m.Participant.username)
                          .where(m.Participant.competition_id == comp.id)).all()
        base = s.scalar(select(func.max(m.Submission.id))) or 0
        now = dt.datetime(2026, 12, 1)
        subs, signatures = [], []
        for k, shingles in enumerate(sets):
            sid = base + k + 1
            pid, user = parts[k % len(parts)]
            subs.append({"id": sid, "phase_id": comp.phases[0].id, "participant_id": pid, "kind": "notebook",
                         "filename": "n.ipynb", "file_key": "0" * 64, "status": m.FINISHED,
                         "status_changed_at": now, "submitted_at": now})
            signatures.append({"submission_id": sid, "competition_id": comp.id, "username": user,
                               "tokens": len(shingles), "computed_at": now,
                               "signature": [int(v) for v in sim.signature(shingles)]})
        for table, rows in ((m.Submission, subs), (m.SimilaritySignature, signatures)):
            for i in range(0, len(rows), 5000):
                s.execute(insert(table), rows[i:i + 5000])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "similarity.json"))
    args = parser.parse_args()
    rng = random.Random(7)
    data = new_notebook(1)
    signed = sim.sign(data, "new.ipynb")
    new_set = sim.shingles(sim.read_sources(data, "new.ipynb").units)
    sets = stored_sets(args.stored, rng)
    matrix = sim.np.vstack([sim.signature(x) for x in sets])
    out: dict = {"stored": args.stored, "repeat": args.repeat, "notebook_cells": 40,
                 "notebook_lines": sum(c.count("\n") for c in json.loads(data)["cells"] for c in [c["source"]]),
                 "shingles": len(new_set)}
    out["sign"] = timings(lambda: sim.sign(data, "new.ipynb"), args.repeat)
    out["compare_numpy"] = timings(lambda: sim.similarities(matrix, signed.signature), args.repeat)
    out["compare_python_sets"] = timings(lambda: [sim.jaccard(new_set, x) for x in sets], max(3, args.repeat // 4))
    out["compare_ratio"] = round(out["compare_numpy"]["median_ms"] / out["compare_python_sets"]["median_ms"], 4)

    with tempfile.TemporaryDirectory(prefix="compete-bench-similarity-") as home:
        platform = Platform(home=home)
        slug = platform.competitions.insert_competition(
            simple_spec(max_submissions=10**6, max_submissions_per_day=10**6), LOCAL_ADMIN)
        fill(platform, slug, sets)
        platform.register(slug, "newcomer", Actor("newcomer"), accept_terms=True)
        sweeps = []
        for i in range(args.repeat + 1):
            path = Path(home) / f"new{i}.ipynb"
            path.write_bytes(new_notebook(100 + i))
            platform.submit(slug, path, username="newcomer", actor=Actor("newcomer"))
            if i == 0:
                platform.similarity._signatures.clear()  # cold: the matrix is read from the database
            started = time.perf_counter()
            done = platform.similarity_sweep()
            sweeps.append(time.perf_counter() - started)
            assert done["signed"] == 1, done
        out["sweep_cold_ms"] = round(sweeps[0] * 1000, 1)
        out["sweep_warm"] = {"median_ms": round(statistics.median(sweeps[1:]) * 1000, 3),
                             "min_ms": round(min(sweeps[1:]) * 1000, 3)}
        platform.close()
    print(json.dumps(out, indent=2))
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
