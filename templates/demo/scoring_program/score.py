"""Scores the demo competition: accuracy and macro F1 of predicted species.

Reads input/ref/labels.csv and input/res/predictions.csv (columns id, species),
writes output/scores.json.  Standard library only, so it runs in any Python 3.
"""
import csv
import json
import os
import sys


def read(path):
    with open(path, newline="") as fh:
        return {row["id"]: row["species"].strip() for row in csv.DictReader(fh)}


def main(input_dir, output_dir):
    truth = read(os.path.join(input_dir, "ref", "labels.csv"))
    res = os.path.join(input_dir, "res", "predictions.csv")
    if not os.path.exists(res):
        sys.exit("the submission has no predictions.csv")
    pred = read(res)
    missing = sorted(set(truth) - set(pred), key=int)
    if missing:
        sys.exit(f"predictions.csv lacks {len(missing)} ids, the first is {missing[0]}")
    correct = sum(pred[i] == truth[i] for i in truth)
    f1s = []
    for label in sorted(set(truth.values())):
        tp = sum(pred[i] == label and truth[i] == label for i in truth)
        fp = sum(pred[i] == label and truth[i] != label for i in truth)
        fn = sum(pred[i] != label and truth[i] == label for i in truth)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "scores.json"), "w") as fh:
        json.dump({"accuracy": correct / len(truth), "f1": sum(f1s) / len(f1s)}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
