"""Ranking pictures: one row per query, the query then its top K, each result framed green (same class) or red.

Drawn with PIL at fixed sizes and colours, so the PNG bytes depend only on the images and the ranking (the stage's
outputs are byte-stable and `dvc plots diff` shows two experiments' pictures side by side).
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from dmlbench import atomic
from dmlbench.data.decode import UnreadableImage, decode_image
from dmlbench.params.sections import JPEG_QUALITY  # prepare's too: Pillow's default 75 would smear the captions
from dmlbench.data.paths import escape_problem
from dmlbench.errors import DmlbenchError
from dmlbench.reporting.figures import pyplot, save_png
from dmlbench.retrieval.ranking import search_pair, top_k

GREEN = (0, 160, 0)  # a result of the query's class
RED = (210, 0, 0)  # a result of another class
GREY = (128, 128, 128)  # a result whose class cannot be judged (a query image of unknown label)
BLUE = (40, 90, 200)  # the query's own frame
THUMB = 96  # each image is fitted into THUMB x THUMB, aspect ratio kept, on white
BORDER = 4  # frame width
CAPTION = 14  # caption line under each image
GAP = 6  # space between cells
TITLE = 18  # the picture's title line
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # by the file's extension; PNG otherwise


@dataclass(frozen=True)
class Cell:
    """One framed image with its caption (a similarity, a label)."""

    image: Path
    caption: str
    frame: tuple[int, int, int]


@dataclass(frozen=True)
class Row:
    """A query and its results, best first."""

    query: Cell
    results: list[Cell]


def result_frame(query_label: int | None, label: int) -> tuple[int, int, int]:
    """Green for a result of the query's class, red for another class, grey when the query's label is unknown."""
    if query_label is None:
        return GREY
    return GREEN if label == query_label else RED


def ranking_row(query_path: Path, query_label: int | None, query_caption: str, paths: list[Path],
                labels: list[int], similarities: list[float]) -> Row:
    """A Row from a query and its ranked results (paths, labels and similarities in rank order)."""
    results = [Cell(path, f"{sim:.4f} ({label})", result_frame(query_label, label))
               for path, label, sim in zip(paths, labels, similarities)]
    return Row(Cell(query_path, query_caption, BLUE), results)


def split_rows(splits: dict, prepared: Path, queries: list[int], k: int,
               captions: list[str] | None = None) -> list[Row]:
    """Rows for the given query indices of an embeddings file's splits; each searches the gallery (or, for
    test.csv, the other test images) exactly as evaluate does. Image paths are the embeddings' own."""
    query, gallery, self_mode = search_pair(splits)
    index = torch.tensor(queries, dtype=torch.long)
    sims, found = top_k(query["embeddings"][index], gallery["embeddings"], k, index if self_mode else None)
    rows = []
    for i, q in enumerate(queries):
        label = int(query["labels"][q])
        caption = captions[i] if captions else f"query, class {label}"
        hits = found[i].tolist()
        rows.append(ranking_row(prepared_image(prepared, query["paths"][q]), label, caption,
                                [prepared_image(prepared, gallery["paths"][j]) for j in hits],
                                [int(gallery["labels"][j]) for j in hits], sims[i].tolist()))
    return rows


def prepared_image(prepared: Path, relative: str) -> Path:
    """prepared/relative, refusing a path that leaves the prepared folder (the embeddings file is untrusted)."""
    problem = escape_problem(prepared, relative)
    if problem:
        raise DmlbenchError(f"image path {relative!r} in the embeddings {problem[0]}: rerun dvc repro embed")
    return prepared / relative


def draw_rows(rows: list[Row], title: str, path: Path) -> None:
    """Write the rows as one picture at ``path`` (atomically; JPEG for .jpg/.jpeg, else PNG); every image file is
    read as untrusted."""
    if not rows:
        raise DmlbenchError(f"no queries to draw in {path}: the evaluation split is empty; rerun dvc repro prepare")
    width = max(1 + len(row.results) for row in rows) * _cell_width() + GAP
    height = TITLE + len(rows) * _cell_height() + GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((GAP, 2), title, fill="black", font=font)
    for r, row in enumerate(rows):
        y = TITLE + r * _cell_height() + GAP
        for c, cell in enumerate([row.query, *row.results]):
            _draw_cell(canvas, draw, font, cell, GAP + c * _cell_width(), y)
    kind = PICTURE_FORMATS.get(Path(path).suffix.lower(), "PNG")
    with atomic.atomic_path(path) as tmp:
        canvas.save(tmp, format=kind, **({"quality": JPEG_QUALITY} if kind == "JPEG" else {}))


def cell_box(row: int, column: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the frame of cell (row, column), column 0 the query: where tests look."""
    x, y = GAP + column * _cell_width(), TITLE + row * _cell_height() + GAP
    side = THUMB + 2 * BORDER
    return x, y, x + side, y + side


def _cell_width() -> int:
    return THUMB + 2 * BORDER + GAP


def _cell_height() -> int:
    return THUMB + 2 * BORDER + CAPTION + GAP


def _draw_cell(canvas: Image.Image, draw: ImageDraw.ImageDraw, font, cell: Cell, x: int, y: int) -> None:
    side = THUMB + 2 * BORDER
    draw.rectangle((x, y, x + side - 1, y + side - 1), fill=cell.frame)
    thumb = _thumbnail(cell.image)
    # Centred in the frame's inside, on white: a non-square image leaves white bands, never frame colour.
    inside = Image.new("RGB", (THUMB, THUMB), "white")
    inside.paste(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
    canvas.paste(inside, (x + BORDER, y + BORDER))
    draw.text((x + BORDER, y + side + 1), cell.caption, fill="black", font=font)


def _thumbnail(path: Path) -> Image.Image:
    """The image at ``path`` as prepare and query decode it (upright, 8-bit) scaled to fit THUMB x THUMB, or one
    line naming the file that cannot be read."""
    try:
        image = decode_image(path, check_shape=False)  # a prepared crop may be small; its source was checked
    except UnreadableImage as exc:
        raise DmlbenchError(f"cannot read image {path} ({exc.cause}): for a prepared image rerun dvc repro -f "
                            f"prepare; for your own, pass a JPEG or PNG file") from None
    return ImageOps.contain(image, (THUMB, THUMB))  # up or down, aspect ratio kept


def plot_recall(ks: list[int], curves: dict[str, list[float]], path: Path, title: str) -> None:
    """Recall@K against K (log-scaled when the Ks span more than a decade), one line per feature, as a PNG."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for name, recalls in curves.items():
        ax.plot(ks, recalls, marker="o", label=name)
        for k, recall in zip(ks, recalls):
            ax.annotate(f"{recall:.3f}", (k, recall), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=7)
    if max(ks) >= 10 * min(ks):
        ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set(xlabel="K", ylabel="Recall@K", ylim=(0, 1.05))
    ax.set_title(title, fontsize=8)  # a run's name is long
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_png(fig, path)
