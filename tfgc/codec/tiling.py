"""Large images in tiles, so that the memory a transform needs does not grow with the image.

A convolutional transform's output at a point depends only on its input within the receptive field around it. So an
image larger than a tile is cut into tiles on its latent grid; each tile's transform runs on the tile plus a margin
(the halo) at least as wide as the receptive field, and only the tile's own part of the output is kept. The result is
the whole-image transform's, up to the rounding of convolutions on other shapes, and it depends on the image size
alone: the same file always decodes to the same pixels. Tiles, halos and window starts are whole shape steps of the
model (tfgc.models.geometry.SHAPE_STEP_PIXELS), and windows at the image's end reach back rather than shrink, so
every window of a large image has one shape: memory that TensorFlow keeps per shape stays bounded.

Instance normalization is the exception: its statistics are those of the whole image, which no tile sees. Models
with it (the paper-scale presets), and models with noise channels, run on whole images, up to WHOLE_IMAGE_PIXELS;
larger images get a clear error. Each model says which it is, and how wide its receptive fields are, in its geometry
(tfgc.models.geometry): this module knows no network.
"""

from __future__ import annotations

from typing import Callable, List, Sequence, Tuple

import numpy as np

from tfgc.errors import ImageError
from tfgc.utils import available_memory

# Tile side in image pixels (GC, SC: 64 latent cells; SR at x4: 256 pixels of the stored image).
TILE_PIXELS = 1024
# The largest image a model with instance normalization transforms in one piece (about 4 GB of activations per
# layer of 60 channels for gc-paper at float32: raise it where the memory is there).
WHOLE_IMAGE_PIXELS = 16_000_000


def spans(length: int, tile: int, halo: int, step: int = 1) -> List[Tuple[int, int, int, int]]:
    """(start, end, window start, window end) of each tile along an axis of `length` cells.

    Tile, halo and window starts are whole multiples of the model's shape `step`, and every window but a short axis's
    only one has the same length (windows at the end reach back further), so the transform, which pads its input to
    whole steps, meets one window shape however large the image."""
    tile, halo, padded = (-(-value // step) * step for value in (tile, halo, length))
    window = min(padded, tile + 2 * halo)
    result = []
    for start in range(0, length, tile):
        window_start = min(max(0, start - halo), padded - window)
        result.append((start, min(start + tile, length), window_start, min(length, window_start + window)))
    return result


def tile_cells(pixels_per_cell: int) -> int:
    """Tile side in grid cells of `pixels_per_cell` image pixels."""
    return max(1, TILE_PIXELS // pixels_per_cell)


def run(transform: Callable, inputs: Sequence[Tuple[np.ndarray, int]], grid: Tuple[int, int], scale: int,
        halo: int, tile: int, step: int = 1) -> np.ndarray:
    """transform(*windows) over the grid in tiles of `tile` cells; returns the output of the whole grid,
    [B, gh*scale, gw*scale, ...].

    inputs: (array [B, H, W, ...], k) pairs, k the array's pixels per grid cell, H and W at most gh*k and gw*k: a
    window that reaches past an array's end is edge-padded there (as edge_pad would pad the whole array, without its
    copy of a large image); `scale` is the output's. `step`: the model's shape step (spans).
    """
    rows, columns = (spans(length, tile, halo, step) for length in grid)
    output = None
    for top, bottom, window_top, window_bottom in rows:
        for left, right, window_left, window_right in columns:
            windows = [_window(array, window_top * k, window_bottom * k, window_left * k, window_right * k)
                       for array, k in inputs]
            result = np.asarray(transform(*windows))
            if output is None:
                output = np.empty((result.shape[0], grid[0] * scale, grid[1] * scale) + result.shape[3:], result.dtype)
            output[:, top * scale:bottom * scale, left * scale:right * scale] = result[
                :, (top - window_top) * scale:(bottom - window_top) * scale,
                (left - window_left) * scale:(right - window_left) * scale]
    return output


def _window(array: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """array[:, top:bottom, left:right], edge-padded where it reaches past the array's end."""
    window = array[:, top:bottom, left:right]
    short = (bottom - top - window.shape[1], right - left - window.shape[2])
    if not any(short):
        return window
    return np.pad(window, [(0, 0), (0, short[0]), (0, short[1])] + [(0, 0)] * (array.ndim - 3), mode="edge")


def needs_tiles(geometry, grid: Tuple[int, int], tile: int, pixels: int) -> bool:
    """Whether an image of `pixels` on this `grid` is transformed in tiles of `tile` cells; a clear error if it is too
    large for a model that cannot be tiled. `geometry`: the model's (tfgc.models.geometry.Geometry)."""
    if grid[0] <= tile and grid[1] <= tile:
        return False
    if geometry.whole_image is None:
        return True
    if pixels > WHOLE_IMAGE_PIXELS:
        raise ImageError(f"an image of {pixels} pixels is too large for this model: its {geometry.whole_image} needs "
                         f"the whole image at once, and tfgc transforms at most {WHOLE_IMAGE_PIXELS} pixels so "
                         "(tfgc.codec.tiling.WHOLE_IMAGE_PIXELS); models with GDN or no normalization, and without "
                         "noise channels, work in tiles at any size")
    needed, available = pixels * geometry.whole_image_bytes_per_pixel, available_memory()
    if available is not None and needed > available:
        # Out of memory, TensorFlow's kernels abort the process (std::bad_alloc): refuse before they start.
        raise ImageError(f"an image of {pixels} pixels needs about {needed / 2**30:.1f} GiB for this model (its "
                         f"{geometry.whole_image} needs the whole image at once) and {available / 2**30:.1f} GiB "
                         "are available; models with GDN or no normalization work in tiles in far less")
    return False


def edge_pad(array: np.ndarray, multiple: int) -> np.ndarray:
    """[B, H, W, ...] edge-replicated to sizes divisible by `multiple` (as the models' own pad_to_multiple)."""
    height, width = array.shape[1:3]
    pad = [(0, 0), (0, -height % multiple), (0, -width % multiple)] + [(0, 0)] * (array.ndim - 3)
    return np.pad(array, pad, mode="edge")
