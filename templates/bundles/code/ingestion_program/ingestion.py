"""Ingestion program: trains the participant's model and writes its predictions.

Run by the platform as
`python3 $program/ingestion.py $input $output $submission_program`:
- $input holds the input data (train.csv with labels, test.csv without),
- $submission_program holds the participant's code with `model.py`,
- $output receives predictions.csv (id,label), which the scoring step reads.
"""
import csv
import os
import sys


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def main(input_dir, output_dir, submission_dir):
    # The participant's folder goes first on the path so that `model` is theirs.
    sys.path.insert(0, submission_dir)
    from model import Model

    train = read_rows(os.path.join(input_dir, "train.csv"))
    test = read_rows(os.path.join(input_dir, "test.csv"))
    model = Model()
    model.fit(train)
    labels = model.predict(test)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "predictions.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label"])
        for row, label in zip(test, labels):
            writer.writerow([row["id"], label])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
