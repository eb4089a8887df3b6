"""Sweep stage tuned@<method>: the method's trial with the best validation score, embedded and evaluated on the
test set (the only trial that reads it). Files: sweeps/tuned/<method>/embeddings.pt, sweeps/metrics/<method>.json."""

import sys

from dmlbench.pipeline import stage
from dmlbench.sweep.trial import evaluate_chosen


def main() -> None:
    record = evaluate_chosen(sys.argv[1])
    m = record["metrics"]
    print(f"sweep tuned {sys.argv[1]}: chose {record['sweep']['chosen']} of {record['sweep']['trials']} trials "
          f"({record['sweep']['changes']}): test R@1 {m['recall@1']:.4f} MAP@R {m['map@r']:.4f}")


if __name__ == "__main__":
    stage.run(main)
