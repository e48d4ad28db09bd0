"""Every `$`-placeholder of the two compute workers, end to end on the docker executor.

The `ingestion_codabench` fixture bundle, with each program's command
wrapped in a probe that is given every placeholder its step has: the probe
checks that each became a folder of the step (nothing left as `$word`), that
`$predictions` and `$hidden` are the scoring input's `res` and `ref`, then runs
the program's own command.  The prediction step's probe leaves a mark in the
predictions that the scoring step's probe requires, so a placeholder that
goes wrong in either step fails the submission.  The score is the one the
bundle's scoring program computes by hand, and the step logs name what the
commands asked for that the step does not have.
"""
from __future__ import annotations

import json
import shutil

import pytest

from hub_extension import models as m
from tests.hub_extension.bundles.test_bundles_end_to_end import Stack, run_scoring, write_files, zip_of
from tests.support.paths import BUNDLE_FIXTURES

BUNDLE = BUNDLE_FIXTURES / "ingestion_codabench"
MARK = "placeholders-of-the-prediction-step.ok"

PROBE = '''
import os, sys
step, rest = sys.argv[1], sys.argv[2:]
split = rest.index("--")
named, command = rest[:split], rest[split + 1:]
paths = dict(item.split("=", 1) for item in named)
for name, path in paths.items():
    if "$" in path or not os.path.isdir(path):
        sys.exit(f"{step}: ${name} became {path!r}, which is no folder of this step")
if step == "scoring":
    for name, sub in (("predictions", "res"), ("hidden", "ref")):
        if not os.path.samefile(paths[name], os.path.join(paths["input"], sub)):
            sys.exit(f"scoring: ${name} is {paths[name]}, not $input/{sub}")
    if not os.path.exists(os.path.join(paths["predictions"], "''' + MARK + '''")):
        sys.exit("scoring: the prediction step's probe left no mark in the predictions")
else:
    open(os.path.join(paths["output"], "''' + MARK + '''"), "w").write("ok")
print(f"{step}: every placeholder is a folder: {sorted(paths)}")
sys.stdout.flush()
os.execvp(command[0], command)
'''

PREDICTION_COMMAND = ("python3 $program/probe.py prediction program=$program ingestion_program=$ingestion_program "
                      "submission_program=$submission_program input=$input output=$output tmp=$tmp "
                      "predictions=$predictions shared=$shared -- "
                      "python3 $program/ingestion.py $input $output $program $submission_program $hidden")
SCORING_COMMAND = ("python3 $program/probe.py scoring program=$program ingestion_program=$ingestion_program "
                   "input=$input output=$output tmp=$tmp predictions=$predictions hidden=$hidden shared=$shared -- "
                   "python3 $program/score.py $input $output")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image):
    s = Stack(tmp_path_factory.mktemp("placeholders-home"))
    yield s
    s.close()


def probing_bundle(target):
    bundle = shutil.copytree(BUNDLE, target)
    for program, command in (("ingestion_program", PREDICTION_COMMAND), ("scoring_program", SCORING_COMMAND)):
        (bundle / program / "probe.py").write_text(PROBE)
        (bundle / program / "metadata.yaml").write_text(f"command: {command}\n")
    return bundle


def test_every_placeholder_of_both_steps_is_a_folder_of_the_step(stack, tmp_path):
    bundle = probing_bundle(tmp_path / "bundle")
    preds = write_files(tmp_path / "preds", {"predictions.txt": "blue\ngreen\nred\nblack\n"})
    info = stack.run(bundle, zip_of(preds, tmp_path / "preds.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    out = run_scoring(BUNDLE / "scoring_program" / "score.py", BUNDLE / "reference_data", preds, tmp_path / "by-hand")
    want = json.loads((out / "scores.json").read_text())
    assert info["scores"] == pytest.approx(want) and want == {"accuracy": 0.75}

    logs = {(e["step"], e["name"]): e["text"] for e in stack.platform.submission_logs(info["id"])}
    assert "prediction: every placeholder is a folder" in logs[("prediction", "stdout")]
    assert "scoring: every placeholder is a folder" in logs[("scoring", "stdout")]
    # What the command asked for that the step has not: said in the step's log.
    assert "`$hidden` names" in logs[("prediction", "stdout")], logs[("prediction", "stdout")]
    assert "the reference data reaches the scoring step only" in logs[("prediction", "stdout")]
    assert "`$tmp` is the output folder" in logs[("scoring", "stdout")]
