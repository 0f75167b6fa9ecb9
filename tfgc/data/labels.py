"""Semantic label maps and preservation masks for selective compression (SC).

A label set says how the ids in a label-map file become the model's classes 0..K-1:

- `cityscapes`: Cityscapes labelIds (0..33, as in `*_gtFine_labelIds.png`) -> the 19 train classes; every other
  labelId (void, rectified border, ego vehicle, ...) becomes class 19, "void". K = 20.
- `identity`: the file's ids are the classes themselves (0..K-1, K from the model config), for datasets labelled in
  their own scheme.

A preservation mask lives at the latent resolution (one cell per 16x16 pixels): 1 where the file stores the latent,
0 where the decoder synthesizes the image from the label map alone. Masks given as images are reduced to that grid by
"any pixel preserved preserves its cell", so nothing the user marked is synthesized.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from tfgc.codec.io import DECODE_ERRORS
from tfgc.errors import ImageError, TfgcError
from tfgc.utils import first_line

# (name, labelId, trainId) of the 19 Cityscapes train classes, in trainId order (Cordts et al. 2016,
# cityscapesScripts' labels.py).
CITYSCAPES_CLASSES = (
    ("road", 7), ("sidewalk", 8), ("building", 11), ("wall", 12), ("fence", 13), ("pole", 17),
    ("traffic light", 19), ("traffic sign", 20), ("vegetation", 21), ("terrain", 22), ("sky", 23), ("person", 24),
    ("rider", 25), ("car", 26), ("truck", 27), ("bus", 28), ("train", 31), ("motorcycle", 32), ("bicycle", 33),
)
CITYSCAPES_MAX_LABEL_ID = 33
CITYSCAPES_VOID = len(CITYSCAPES_CLASSES)  # the class every non-train labelId maps to
# Cityscapes' colours of the train classes, and black for void: for figures.
CITYSCAPES_PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 0)], np.uint8)

LABEL_SETS = ("cityscapes", "identity")


def class_count(label_set: str, semantic_classes: int) -> int:
    """How many classes K a model of this label set distinguishes."""
    return CITYSCAPES_VOID + 1 if label_set == "cityscapes" else semantic_classes


def class_names(label_set: str, semantic_classes: int) -> List[str]:
    if label_set == "cityscapes":
        return [name for name, _ in CITYSCAPES_CLASSES] + ["void"]
    return [str(i) for i in range(semantic_classes)]


def _cityscapes_lookup() -> np.ndarray:
    lookup = np.full(CITYSCAPES_MAX_LABEL_ID + 1, CITYSCAPES_VOID, np.uint8)
    for train_id, (_, label_id) in enumerate(CITYSCAPES_CLASSES):
        lookup[label_id] = train_id
    return lookup


def max_label_id(label_set: str, classes: int) -> int:
    """The largest id a label-map file of this label set may hold."""
    return CITYSCAPES_MAX_LABEL_ID if label_set == "cityscapes" else classes - 1


def to_classes(label_ids: np.ndarray, label_set: str, classes: int) -> np.ndarray:
    """A label map of file ids [H, W] as the model's classes (uint8); ids outside the label set are an error."""
    label_ids = np.asarray(label_ids)
    limit = max_label_id(label_set, classes)
    lookup = _cityscapes_lookup() if label_set == "cityscapes" else None
    if label_ids.size and (label_ids.min() < 0 or label_ids.max() > limit):
        bad = int(label_ids.max() if label_ids.max() > limit else label_ids.min())
        raise TfgcError(f"label map holds id {bad}, outside the {label_set} label set (0..{limit})")
    label_ids = label_ids.astype(np.int64)
    return (lookup[label_ids] if lookup is not None else label_ids).astype(np.uint8)


def read_label_ids(source) -> np.ndarray:
    """A label-map image (path, bytes or array) as integer ids [H, W]: one channel of 8 or 16 bits, or a palette
    image's indices."""
    if isinstance(source, np.ndarray):
        array = source
    else:
        import io

        from PIL import Image, UnidentifiedImageError

        name = "label map bytes" if isinstance(source, (bytes, bytearray)) else str(source)
        try:
            opened = Image.open(io.BytesIO(source)) if isinstance(source, (bytes, bytearray)) else Image.open(source)
            with opened as image:
                if image.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                    raise ImageError(f"label map {name} is a {image.mode} image; it must have one channel of ids "
                                     "(8- or 16-bit greyscale, or palette indices)")
                array = np.asarray(image)
        except FileNotFoundError:
            raise ImageError(f"cannot read label map {name}: no such file") from None
        except UnidentifiedImageError:
            raise ImageError(f"cannot read label map {name}: not an image format Pillow knows") from None
        except DECODE_ERRORS as e:
            raise ImageError(f"cannot read label map {name}: {first_line(e)}") from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ImageError(f"a label map must be a 2-D array of integer ids, not {array.dtype} {list(array.shape)}")
    return array


def load_classes(source, label_set: str, classes: int, size: Optional[Sequence[int]] = None) -> np.ndarray:
    """Read a label map and convert it to classes; `size` (H, W) is the image it must match."""
    ids = read_label_ids(source)
    if size is not None and tuple(ids.shape) != tuple(size):
        raise ImageError(f"label map is {ids.shape[1]}x{ids.shape[0]}, the image {size[1]}x{size[0]}: they must be "
                         "the same size")
    return to_classes(ids, label_set, classes)


def latent_shape(height: int, width: int, downsampling: int = 16):
    return -(-height // downsampling), -(-width // downsampling)


def reduce_to_latent(pixel_mask: np.ndarray, downsampling: int = 16) -> np.ndarray:
    """A boolean pixel mask [H, W] -> uint8 [ceil(H/16), ceil(W/16)]: a cell is preserved if any of its pixels is."""
    height, width = pixel_mask.shape
    h, w = latent_shape(height, width, downsampling)
    padded = np.zeros((h * downsampling, w * downsampling), bool)
    padded[:height, :width] = pixel_mask
    return padded.reshape(h, downsampling, w, downsampling).any(axis=(1, 3)).astype(np.uint8)


def expand_to_pixels(mask: np.ndarray, height: int, width: int, downsampling: int = 16) -> np.ndarray:
    """A latent mask -> boolean [H, W], each cell covering its 16x16 pixels."""
    return np.repeat(np.repeat(mask.astype(bool), downsampling, 0), downsampling, 1)[:height, :width]


def mask_from_image(source, size: Sequence[int], downsampling: int = 16) -> np.ndarray:
    """A binary mask image (any two values, the larger one preserves; or one value) of the image's size, or of the
    latent grid's, as a latent mask."""
    values = read_binary_image(source)
    height, width = size
    grid = latent_shape(height, width, downsampling)
    if values.shape == tuple(grid):
        return values.astype(np.uint8)
    if values.shape != (height, width):
        raise ImageError(f"preservation mask is {values.shape[1]}x{values.shape[0]}; it must be the image's size "
                         f"({width}x{height}) or the latent grid's ({grid[1]}x{grid[0]})")
    return reduce_to_latent(values, downsampling)


def read_binary_image(source) -> np.ndarray:
    """A mask image as booleans; more than two distinct values is an error."""
    if isinstance(source, np.ndarray):
        array = source
    else:
        from PIL import Image

        try:
            with Image.open(source) as image:
                array = np.asarray(image.convert("L") if image.mode not in ("1", "L", "I", "I;16") else image)
        except FileNotFoundError:
            raise ImageError(f"cannot read preservation mask {source}: no such file") from None
        except DECODE_ERRORS as e:
            raise ImageError(f"cannot read preservation mask {source}: {first_line(e)}") from None
    if array.ndim != 2:
        raise ImageError(f"a preservation mask must be one channel, not shape {list(array.shape)}")
    values = np.unique(array)
    if len(values) > 2:
        raise ImageError(f"preservation mask is not binary: it holds {len(values)} distinct values "
                         f"({', '.join(str(v) for v in values[:4])}{', ...' if len(values) > 4 else ''})")
    if len(values) == 2:
        return array == values[1]
    return np.full(array.shape, bool(values[0]) if values.size else False)


def class_ids(names: Sequence[str], label_set: str, semantic_classes: int) -> List[int]:
    """Class names or numbers (as the user types them) -> class indices."""
    known: Dict[str, int] = {name: i for i, name in enumerate(class_names(label_set, semantic_classes))}
    count = len(known)
    ids = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name in known:
            ids.append(known[name])
        elif name.isdigit() and int(name) < count:
            ids.append(int(name))
        else:
            shown = ", ".join(known) if label_set == "cityscapes" else f"0..{count - 1}"
            raise TfgcError(f"unknown class {raw.strip()!r}; the {label_set} classes are {shown}")
    return ids


def mask_from_classes(classes: np.ndarray, preserved: Sequence[int], downsampling: int = 16) -> np.ndarray:
    return reduce_to_latent(np.isin(classes, list(preserved)), downsampling)


def box_mask(height: int, width: int, fraction: float, downsampling: int = 16) -> np.ndarray:
    """A centred box of latent cells covering `fraction` of the grid's area (0: none, 1: all), with the image's
    aspect ratio; for sweeps of the preserved area."""
    h, w = latent_shape(height, width, downsampling)
    mask = np.zeros((h, w), np.uint8)
    if fraction <= 0:
        return mask
    side = np.sqrt(min(1.0, fraction))
    bh, bw = max(1, int(round(h * side))), max(1, int(round(w * side)))
    top, left = (h - bh) // 2, (w - bw) // 2
    mask[top:top + bh, left:left + bw] = 1
    return mask


def colorize(classes: np.ndarray, label_set: str) -> np.ndarray:
    """Classes [H, W] as RGB, in Cityscapes' colours (other label sets: a fixed pseudo-random palette)."""
    if label_set == "cityscapes":
        palette = CITYSCAPES_PALETTE
    else:
        palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    return palette[np.minimum(classes, len(palette) - 1)]
