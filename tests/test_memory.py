"""Memory over long runs: a process that decodes many files, of many sizes, loading models by path, stays flat."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops

from tfgc.codec import api, tiling
from tfgc.config import preset
from tfgc.models import geometry
from tfgc.models.registry import build_model
from tfgc.models.store import save_model
from tfgc.nn.layers import lower_bound


def _gradient_registrations() -> int:
    return len(ops._gradient_registry._registry)


@pytest.fixture(scope="module")
def gdn_directory(tmp_path_factory):
    tf.keras.utils.set_random_seed(5)
    directory = tmp_path_factory.mktemp("memory") / "gdn"
    save_model(build_model(preset("gc-tiny").replace(normalization="gdn", fidelity_control=True),
                           for_training=False), directory)
    return directory


def test_decoding_by_path_registers_no_gradients(gdn_directory, photos):
    """tensorflow-compression's lower_bound (GDN's parameters) is a tf.custom_gradient: traced, it registered its
    gradient for the life of the process, and with it the traced graph of every model loaded to decode."""
    data = api.compress(photos["astronaut"][:40, :56], gdn_directory)
    api.decode(data, gdn_directory, alpha=0.5)
    before = _gradient_registrations()
    for _ in range(3):
        api.decode(api.compress(photos["astronaut"][:40, :56], gdn_directory), gdn_directory, alpha=0.5)
    assert _gradient_registrations() == before


def test_lower_bound_keeps_its_gradient_where_one_is_taken():
    """Training still gets tfc's gradient (identity when it moves the value towards the bound), not tf.maximum's."""
    variable = tf.Variable([0.0, 2.0])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(lower_bound(variable, 1.0))
        return tape.gradient(loss, variable)

    np.testing.assert_array_equal(gradient().numpy(), [-1.0, -1.0])  # tf.maximum's would be [0, -1]

    @tf.function
    def value():
        return lower_bound(variable, 1.0)

    before = _gradient_registrations()
    np.testing.assert_array_equal(value().numpy(), [1.0, 2.0])
    assert _gradient_registrations() == before


@pytest.mark.parametrize("tile, halo, step", [(16, 5, 8), (16, 0, 8), (12, 5, 8), (16, 5, 1)])
@pytest.mark.parametrize("length", [1, 7, 8, 9, 63, 64, 65, 100, 129, 300, 1000])
def test_tile_windows_are_alike_and_see_their_halo(length, tile, halo, step):
    spans = tiling.spans(length, tile, halo, step)
    tile = -(-tile // step) * step  # a tile is whole steps
    assert [start for start, *_ in spans] == list(range(0, length, tile))
    assert spans[-1][1] == length
    padded = -(-length // step) * step
    window_lengths = set()
    for start, end, window_start, window_end in spans:
        assert window_start % step == 0
        assert window_start <= max(0, start - halo) and window_end >= min(length, end + halo)
        # the transform pads a window to whole steps: that is the shape it meets
        window_lengths.add(-(-(window_end - window_start) // step) * step)
    window = tile + 2 * (-(-halo // step) * step)
    assert window_lengths == ({padded} if padded <= window else {window})


def test_geometry_records_the_step_its_graphs_were_built_with():
    gdn = build_model(preset("gc-tiny").replace(normalization="gdn")).geometry
    assert gdn.shape_step == geometry.SHAPE_STEP_PIXELS // gdn.downsampling
    recorded = gdn.to_dict()
    assert recorded["step_pixels"] == geometry.SHAPE_STEP_PIXELS
    assert geometry.Geometry.from_dict(recorded) == gdn
    assert geometry.Geometry.from_dict(dict(recorded, step_pixels=256)).shape_step == 256 // gdn.downsampling
    # exports from before the steps record none: their graphs take any size
    older = {key: value for key, value in recorded.items() if key != "step_pixels"}
    assert geometry.Geometry.from_dict(older).shape_step == 1


# Run in a fresh interpreter: in the suite's process, the pools of what ran before (training, other models) made the
# growth depend on the tests' order.
_DECODING_WORKLOAD = """
import json, os, sys
import numpy as np
from tfgc.codec import api
from tfgc.codec.io import load_image
from tfgc.data import bundled_images
from tfgc.models import geometry
from tfgc.models.store import load_model
from tfgc.utils import resident_mib

directory = sys.argv[1]
rng = np.random.default_rng(0)
model = load_model(directory)
astronaut = next(load_image(path) for path in bundled_images() if "astronaut" in os.path.basename(path))
image = np.tile(astronaut, (2, 2, 1))
step = geometry.SHAPE_STEP_PIXELS
for height in range(step // 2, 700 + step, step):  # warm-up: every shape the sizes below can take
    for width in range(step // 2, 700 + step, step):
        api.decode(api.compress(image[:height, :width], model), model)
for _ in range(10):
    api.decode(api.compress(image[:40, :56], model), directory)
before = resident_mib()
for _ in range(200):
    height, width = int(rng.integers(16, 700)), int(rng.integers(16, 700))
    api.decode(api.compress(image[:height, :width], model), model)
data = api.compress(image[:40, :56], model)
for _ in range(60):
    api.decode(data, directory)
print(json.dumps({"growth_mib": resident_mib() - before}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident set size from /proc")
@pytest.mark.slow
def test_a_few_hundred_decodes_keep_memory_flat(gdn_directory):
    """Files of 200 sizes through one loaded model, and 60 loads by path: the process grew by megabytes per size
    (a oneDNN primitive per shape) and per load (the traced graph kept by its gradient registrations)."""
    run = subprocess.run([sys.executable, "-c", _DECODING_WORKLOAD, str(gdn_directory)], capture_output=True,
                         text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-2000:]
    growth = json.loads(run.stdout.strip().splitlines()[-1])["growth_mib"]
    assert growth < 150, growth  # 497 MiB before (190 from the sizes, 307 from the loads), about 30 now


def test_a_whole_image_model_refuses_an_image_the_memory_cannot_hold(monkeypatch, photos):
    """Out of memory, TensorFlow's kernels abort the process: a whole-image (instance norm) model refuses first."""
    model = build_model(preset("gc-tiny"))  # instance norm
    bytes_per_pixel = model.geometry.whole_image_bytes_per_pixel
    assert model.geometry.whole_image == "instance normalization" and bytes_per_pixel > 0
    image = photos["chelsea"][:64, :64]
    monkeypatch.setattr(tiling, "tile_cells", lambda pixels_per_cell: 1)  # every image "large" for this test
    monkeypatch.setattr(tiling, "available_memory", lambda: 64 * 64 * bytes_per_pixel - 1)
    with pytest.raises(tiling.ImageError, match=r"an image of 4096 pixels needs about 0.0 GiB for this model \(its "
                                                r"instance normalization needs the whole image at once\)"):
        api.compress(image, model)
    monkeypatch.setattr(tiling, "available_memory", lambda: 64 * 64 * bytes_per_pixel)
    assert api.decompress(api.compress(image, model), model).shape == (64, 64, 3)
    assert build_model(preset("gc-tiny").replace(normalization="gdn")).geometry.whole_image_bytes_per_pixel == 0
