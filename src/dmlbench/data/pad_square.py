"""Zero-pad a PIL image to a square (the CGD-TF seed's preprocessing before its resize)."""

from PIL import Image


class PadToSquare:
    """Black borders on the short side, split evenly; an odd difference puts the extra pixel bottom/right.

    A plain class (not a lambda), so DataLoader workers can pickle it.
    """

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        side = max(width, height)
        if width == height:
            return image
        square = Image.new(image.mode, (side, side))  # zeros in every mode: black RGB, 0 grey
        square.paste(image, ((side - width) // 2, (side - height) // 2))
        return square

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
