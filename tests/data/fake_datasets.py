"""Tiny fake CUB-200-2011, CARS196, SOP, In-shop and folder datasets written in each exact published layout."""

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

SIZES = ((60, 40), (40, 60), (50, 50))  # width x height, cycled
BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def write_jpeg(path: Path, seed: int) -> tuple[int, int]:
    """A random-noise JPEG of one of SIZES; returns its size."""
    size = SIZES[seed % len(SIZES)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, quality=90)
    return size


# Real CUB class folders and file-name stems, so paths look like the archive's.
CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross",
               "004.Groove_billed_Ani", "005.Crested_Auklet", "006.Least_Auklet")


def fake_box(image_id: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A fractional x, y, w, h box inside the image, as in bounding_boxes.txt."""
    w, h = size
    return (2.4 + image_id % 3, 3.6, w / 2 + 0.3, h / 3)


def write_fake_cub(root: Path, num_classes: int = 6, per_class: int = 3) -> Path:
    """images/ and the five CUB annotation files (6 classes x 3 images by default); returns ``root``."""
    lines = {name: [] for name in ("images", "image_class_labels", "bounding_boxes", "classes",
                                   "train_test_split")}
    image_id = 0
    for c, folder in enumerate(CUB_CLASSES[:num_classes], start=1):
        lines["classes"].append(f"{c} {folder}")
        stem = folder.split(".", 1)[1].title()
        for i in range(per_class):
            image_id += 1
            size = SIZES[i % len(SIZES)]
            relative = f"{folder}/{stem}_{i + 1:04d}_{100 + image_id}.jpg"
            path = root / "images" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(image_id).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(path, quality=90)
            lines["images"].append(f"{image_id} {relative}")
            lines["image_class_labels"].append(f"{image_id} {c}")
            lines["bounding_boxes"].append(f"{image_id} " + " ".join(map(str, fake_box(image_id, size))))
            lines["train_test_split"].append(f"{image_id} {i % 2}")
    for name, content in lines.items():
        (root / f"{name}.txt").write_text("\n".join(content) + "\n")
    return root


def fake_car_box(index: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """An x1, y1, x2, y2 box inside the image, as in the .mat files (1-based pixel corners)."""
    return 1 + index % 3, 2, size[0] - 3, size[1] - 1 - index % 2


def _struct(rows: list[dict]) -> np.ndarray:
    """A 1 x N MATLAB struct array, the shape the real annotation files have."""
    array = np.zeros((1, len(rows)), dtype=[(name, "O") for name in rows[0]])
    for i, row in enumerate(rows):
        for name, value in row.items():
            array[0, i][name] = value
    return array


def _car_images(root: Path, num_classes: int, per_class: int) -> list[tuple[int, int, tuple]]:
    """(index, class, size) of each image, classes 1..num_classes, images numbered from 1."""
    return [(c * per_class + i + 1, c + 1, SIZES[(c * per_class + i + 1) % 3])
            for c in range(num_classes) for i in range(per_class)]


def write_fake_cars(root: Path, num_classes: int = 4, per_class: int = 3) -> Path:
    """cars_annos.mat + car_ims/; the official test flag alternates, so a reader using it would fail."""
    rows = []
    for index, label, _ in _car_images(root, num_classes, per_class):
        size = write_jpeg(root / f"car_ims/{index:06d}.jpg", index)
        box = dict(zip(BOX_FIELDS, fake_car_box(index, size)))
        rows.append({"relative_im_path": f"car_ims/{index:06d}.jpg", **box, "class": label, "test": index % 2})
    class_names = np.array([f"Make Model {c} 2012" for c in range(1, num_classes + 1)], dtype=object)
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": _struct(rows), "class_names": class_names})
    return root


def write_fake_cars_devkit(root: Path, num_classes: int = 4, per_class: int = 3,
                           test_in_devkit: bool = False) -> Path:
    """devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat, cars_train/, cars_test/."""
    parts = {"cars_train": [], "cars_test": []}
    for index, label, _ in _car_images(root, num_classes, per_class):
        folder = "cars_test" if index % 2 else "cars_train"  # the official split mixes every class
        fname = f"{len(parts[folder]) + 1:05d}.jpg"
        size = write_jpeg(root / folder / fname, index)
        parts[folder].append({**dict(zip(BOX_FIELDS, fake_car_box(index, size))), "class": label, "fname": fname})
    (root / "devkit").mkdir(parents=True, exist_ok=True)
    names = np.array([f"Make Model {c} 2012" for c in range(1, num_classes + 1)], dtype=object)
    scipy.io.savemat(root / "devkit/cars_meta.mat", {"class_names": names})
    scipy.io.savemat(root / "devkit/cars_train_annos.mat", {"annotations": _struct(parts["cars_train"])})
    test_file = root / ("devkit" if test_in_devkit else ".") / "cars_test_annos_withlabels.mat"
    scipy.io.savemat(test_file, {"annotations": _struct(parts["cars_test"])})
    return root


def write_fake_sop(root: Path, classes_per_split: int = 3, per_class: int = 3) -> Path:
    """Ebay_train.txt / Ebay_test.txt (+ Ebay_info.txt) and <super class>_final/ image folders."""
    header = "image_id class_id super_class_id path"
    lines = {"train": [header], "test": [header]}
    image_id = 0
    for class_id in range(1, 2 * classes_per_split + 1):
        split = "train" if class_id <= classes_per_split else "test"
        super_id, super_name = (1, "bicycle_final") if class_id % 2 else (2, "chair_final")
        for i in range(per_class):
            image_id += 1
            relative = f"{super_name}/{111085122000 + class_id}_{i}.JPG"
            write_jpeg(root / relative, image_id)
            lines[split].append(f"{image_id} {class_id} {super_id} {relative}")
    for split, content in lines.items():
        (root / f"Ebay_{split}.txt").write_text("\n".join(content) + "\n")
    (root / "Ebay_info.txt").write_text("\n".join(["image_id class_id super_class_id path",
                                                   *[line for line in lines["train"][1:] + lines["test"][1:]]]))
    return root


def write_fake_inshop(root: Path, train_ids: int = 3, test_ids: int = 3, per_id: int = 4,
                      flat: bool = False) -> Path:
    """Eval/list_eval_partition.txt + Img/img/... (``flat``: list and img/ at the root)."""
    rows, seed = [], 0
    for item in range(1, train_ids + test_ids + 1):
        kind = ("WOMEN/Dresses", "MEN/Denim")[item % 2]
        for i in range(per_id):
            seed += 1
            relative = f"img/{kind}/id_{item:08d}/{i + 1:02d}_{i % 4 + 1}_front.jpg"
            write_jpeg(root / ("" if flat else "Img") / relative, seed)
            status = "train" if item <= train_ids else ("query" if i % 2 == 0 else "gallery")
            rows.append(f"{relative} id_{item:08d} {status}")
    listing = root / ("list_eval_partition.txt" if flat else "Eval/list_eval_partition.txt")
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("\n".join([str(len(rows)), "image_name item_id evaluation_status", *rows]) + "\n")
    return root


def write_fake_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "emu", "fox"), per_class: int = 3,
                      splits: dict[str, str] | None = None) -> Path:
    """<root>/<class>/<n>.jpg (+ a stray non-image file); ``splits`` writes <root>/split.txt."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_jpeg(root / name / f"{i:03d}.jpg", c * per_class + i)
        (root / name / "notes.txt").write_text("not an image\n")
    if splits is not None:
        (root / "split.txt").write_text("".join(f"{name} {split}\n" for name, split in splits.items()))
    return root


# The four quadrants of a stored image, so a test can tell a rotation from a flip (top-left, top-right,
# bottom-left, bottom-right).
QUADRANTS = ((220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 230, 40))  # red, blue, green, yellow


def write_oriented_jpeg(path: Path, orientation: int = 6, size: tuple[int, int] = (80, 40)) -> Path:
    """A JPEG whose stored pixels are QUADRANTS, tagged with EXIF ``orientation`` (6: a phone held upright, shown
    turned 90 degrees clockwise: stored 80x40, displayed 40x80)."""
    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    for index, colour in enumerate(QUADRANTS):
        row, column = divmod(index, 2)
        pixels[row * height // 2:(row + 1) * height // 2, column * width // 2:(column + 1) * width // 2] = colour
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path, quality=95, exif=exif)
    return path


def sixteen_bit_gradient(width: int = 256, height: int = 256) -> np.ndarray:
    """Every 16-bit level once (256 x 256 = 65,536 pixels), row by row: the full range, as uint16."""
    return np.arange(width * height, dtype=np.uint32).reshape(height, width).astype(np.uint16)
