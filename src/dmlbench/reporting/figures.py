"""Static PNG pictures for the README (`dvc plots show` needs a CDN, so offline it shows nothing): the one
matplotlib setup and byte-stable PNG save that every figure uses, and the training figure."""

from pathlib import Path

from dmlbench import atomic


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); imported on first use, as it is slow to load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically and close it. No "Software" entry: the PNG bytes then depend only on
    the data (byte-stable reruns)."""
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    pyplot().close(fig)


def plot_training(history: list, path: Path, title: str) -> None:
    """Per-epoch loss terms (left) and classifier accuracy (right) of ``train``'s history, as a PNG."""
    plt = pyplot()
    epochs = list(range(1, len(history) + 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    for name in (history[0]["terms"] if history else {}):
        left.plot(epochs, [h["terms"][name] for h in history], marker="o", label=name)
    left.set(xlabel="epoch", ylabel="loss", title="training loss")
    left.legend()
    right.plot(epochs, [h["accuracy"] for h in history], marker="o", label="train batch accuracy")
    for name in (history[-1].get("scores", {}) if history else {}):  # train.select's per-epoch scores
        right.plot(epochs, [h["scores"][name] for h in history], marker="s", label=name)
    right.set(xlabel="epoch", ylabel="fraction", title="accuracy, selection scores", ylim=(0, 1))
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)
