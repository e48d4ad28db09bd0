"""Scoring program: accuracy of the predicted labels, written to scores.json.

Run by the platform as `python3 $program/score.py $input $output`:
- $input/ref holds the reference data (truth.csv: id,label),
- $input/res holds the submission's predictions (predictions.csv: id,label),
- $output/scores.json receives one value per leaderboard column key.
"""
import csv
import json
import os
import sys


def read_labels(path):
    with open(path, newline="") as fh:
        return {row["id"]: row["label"] for row in csv.DictReader(fh)}


def main(input_dir, output_dir):
    truth = read_labels(os.path.join(input_dir, "ref", "truth.csv"))
    predictions_path = os.path.join(input_dir, "res", "predictions.csv")
    if not os.path.exists(predictions_path):
        sys.exit("predictions.csv is missing from the submission")
    predicted = read_labels(predictions_path)
    correct = sum(1 for key, label in truth.items() if predicted.get(key) == label)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "scores.json"), "w") as fh:
        json.dump({"accuracy": correct / max(len(truth), 1)}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
