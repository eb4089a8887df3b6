"""Each stage's own params section as a validated dataclass (the top level is ``identity.Experiment``)."""

from dataclasses import dataclass
from typing import Any, Literal

from dmlbench.params.load import build, check_seed, require


@dataclass(frozen=True)
class DataSelection:
    """The top-level keys that say which prepared data a stage reads: dataset and crop."""

    dataset: str
    crop: Literal["uncropped", "cropped"]


def data_selection(params: dict[str, Any]) -> DataSelection:
    """``dataset`` and ``crop`` from the top level of params.yaml, checked (the dataset name by its reader)."""
    return build(DataSelection, {k: params.get(k) for k in ("dataset", "crop")}, "")


@dataclass(frozen=True)
class DataConfig:
    """Where the user keeps raw datasets, one folder per dataset."""

    root: str


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of the generated demo dataset (CUB-200-2011 layout)."""

    num_classes: int
    images_per_class: int
    image_size: int
    seed: int

    def __post_init__(self) -> None:
        require(self.num_classes >= 4, f"synthetic.num_classes must be >= 4, got {self.num_classes}")
        require(self.images_per_class >= 2, f"synthetic.images_per_class must be >= 2, got {self.images_per_class}")
        require(self.image_size >= 32, f"synthetic.image_size must be >= 32, got {self.image_size}")
        check_seed(self.seed, "synthetic.seed")


JPEG_QUALITY = 95  # prepare.jpeg_quality's default (and the query picture's); the seeds re-saved at PIL's 75
MAX_JPEG_QUALITY = 95  # Pillow accepts up to 100, but above 95 files grow a lot for no visible gain (Pillow's advice)


@dataclass(frozen=True)
class PrepareConfig:
    """How raw images become prepared ones: longest side cap (null keeps originals), decode processes,
    whether published split counts are enforced, whether unreadable images stop the stage, JPEG quality."""

    max_side: int | None
    workers: int
    check_counts: bool = True  # false: a partial copy or a fixture; prepare warns that it is unchecked
    skip_corrupt: bool = False  # true: skip missing/corrupt/too-large images and list them in skipped.csv
    jpeg_quality: int = JPEG_QUALITY  # of the re-saved images; the seeds used PIL's default, 75

    def __post_init__(self) -> None:
        require(self.max_side is None or self.max_side >= 32,
                f"prepare.max_side must be >= 32 or null, got {self.max_side}")
        require(self.workers >= 0, f"prepare.workers must be >= 0, got {self.workers}")
        require(1 <= self.jpeg_quality <= MAX_JPEG_QUALITY,
                f"prepare.jpeg_quality must be in [1, {MAX_JPEG_QUALITY}], got {self.jpeg_quality}")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SELECTIONS = ("last", "best_val", "best_test")  # train.select (training/selection.py)
SELECT_METRICS = ("map@r", "recall@1")  # train.select_metric: the score that picks the kept epoch


def check_precision(value: str, where: str) -> None:
    """One error line for a precision that is not one of PRECISIONS."""
    require(value in PRECISIONS, f"{where} must be one of {', '.join(PRECISIONS)}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Training mechanics shared by every method (the recipe itself lives in the method's section)."""

    device: str
    workers: int
    pretrained: bool
    deterministic: bool  # torch.use_deterministic_algorithms: bit-reproducible GPU runs, somewhat slower
    checkpoint_every_steps: int  # also checkpoint every N batches (0: only at the end of each epoch)
    precision: str = "auto"  # autocast dtype; auto: bf16 on a GPU that has it, else fp16 + loss scaling; CPU fp32
    channels_last: bool = True  # NHWC images and weights (faster convolutions on GPU tensor cores)
    compile: bool = False  # torch.compile the forward (minutes of compiling first; pays off on long GPU runs)
    nproc: int = 1  # > 1: the train stage runs under torchrun with this many DDP processes (one per GPU)
    select: str = "last"  # which epoch's weights are kept: last | best_val | best_test (training/selection.py)
    val_fraction: float = 0.2  # best_val: the share of training classes held out to select on
    select_batch_size: int = 128  # images per forward when scoring an epoch for select
    # MAP@R by default: Recall@1 saturates on a few held-out classes (the metric-learning reality check's choice)
    select_metric: str = "map@r"

    def __post_init__(self) -> None:
        require(self.workers >= 0, f"train.workers must be >= 0, got {self.workers}")
        require(self.select in SELECTIONS, f"train.select must be one of {', '.join(SELECTIONS)}, got "
                                           f"{self.select!r}")
        require(0 < self.val_fraction < 1, f"train.val_fraction must be in (0, 1), got {self.val_fraction}")
        require(self.select_metric in SELECT_METRICS, f"train.select_metric must be one of "
                                                      f"{', '.join(SELECT_METRICS)}, got {self.select_metric!r}")
        require(self.select_batch_size >= 1, f"train.select_batch_size must be >= 1, got {self.select_batch_size}")
        require(self.nproc >= 1, f"train.nproc must be >= 1, got {self.nproc}")
        require(self.checkpoint_every_steps >= 0,
                f"train.checkpoint_every_steps must be >= 0, got {self.checkpoint_every_steps}")
        require(self.device in ("auto", "cpu") or self.device.startswith("cuda"),
                f"train.device must be auto, cpu or cuda[:N], got {self.device!r}")
        check_precision(self.precision, "train.precision")


@dataclass(frozen=True)
class EmbedConfig:
    """Batch size, loader processes, autocast precision and memory format of embedding extraction."""

    batch_size: int
    workers: int
    precision: str = "auto"  # as train.precision, for inference (no loss scaling); fp32 for exact embeddings
    channels_last: bool = True

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, f"embed.batch_size must be >= 1, got {self.batch_size}")
        require(self.workers >= 0, f"embed.workers must be >= 0, got {self.workers}")
        check_precision(self.precision, "embed.precision")


@dataclass(frozen=True)
class EvaluateConfig:
    """Query rows per similarity chunk (memory: chunk_size x gallery floats); the Recall@K list
    (None = the dataset's published list)."""

    chunk_size: int
    recall_ks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        require(self.chunk_size >= 1, f"evaluate.chunk_size must be >= 1, got {self.chunk_size}")
        require(self.recall_ks is None or (len(self.recall_ks) > 0 and min(self.recall_ks) >= 1),
                f"evaluate.recall_ks must be null or a non-empty list of K >= 1, got {self.recall_ks}")


@dataclass(frozen=True)
class ComplexityConfig:
    """Input side for thop, and the seed grid (backbones x datasets) counted beside the current model."""

    image_size: int
    backbones: tuple[str, ...]
    datasets: tuple[str, ...]

    def __post_init__(self) -> None:
        require(self.image_size >= 32, f"complexity.image_size must be >= 32, got {self.image_size}")


@dataclass(frozen=True)
class TablesConfig:
    """The file whose marked block receives the generated tables."""

    readme: str


# Every stage section of params.yaml and its dataclass (methods add theirs: ``dmlbench.methods.METHODS``).
SECTIONS: dict[str, type] = {
    "data": DataConfig, "synthetic": SyntheticConfig, "prepare": PrepareConfig, "train": TrainConfig,
    "embed": EmbedConfig, "evaluate": EvaluateConfig, "complexity": ComplexityConfig, "tables": TablesConfig,
}
