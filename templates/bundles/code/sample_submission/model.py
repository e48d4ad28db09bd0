"""Example submission: the label of the nearest training weight."""


class Model:
    def fit(self, rows):
        self.examples = [(float(row["weight_kg"]), row["label"]) for row in rows]

    def predict(self, rows):
        return [min(self.examples, key=lambda ex: abs(ex[0] - float(row["weight_kg"])))[1] for row in rows]
