"""Image presets named by what they are for: a training crop and a test resize, ImageNet statistics."""

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_normalized_tensor() -> list:
    return [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def train_preset(resize: int, crop: int) -> T.Compose:
    """Resize((resize, resize)) -> RandomCrop(crop) -> horizontal flip (CGD/NormSoftmax training)."""
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(crop), T.RandomHorizontalFlip(),
                      *_to_normalized_tensor()])


def test_preset(resize: int, center_crop: int | None = None) -> T.Compose:
    """Resize((resize, resize)), optionally CenterCrop(center_crop): deterministic evaluation view."""
    steps = [T.Resize((resize, resize))] + ([T.CenterCrop(center_crop)] if center_crop else [])
    return T.Compose(steps + _to_normalized_tensor())
