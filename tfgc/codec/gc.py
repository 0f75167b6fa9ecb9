"""The gc family's files (Agustsson et al. 2019, generative compression): the latent symbols of the whole image,
range coded with the model's prior or the uniform table, whichever is shorter, so no file exceeds the rate bound by
more than the format's fixed overhead and a few bytes.

The helpers here (tiled transforms, latent coding) are also the sc family's, whose files add a label map and a mask
to the same latents.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from tfgc.codec import bitstream, tiling
from tfgc.codec.family import Described, EncodeResult, FamilyCodec, model_fingerprint


def analysis(model, pixels: np.ndarray, classes: Optional[np.ndarray] = None) -> np.ndarray:
    """The model's symbols [h, w, C] of an image (and an sc model's classes), in tiles when it is large."""
    geometry = model.geometry
    down = geometry.downsampling
    inputs = [(pixels[None], down)] + ([(classes[None], down)] if classes is not None else [])
    grid = (-(-pixels.shape[0] // down), -(-pixels.shape[1] // down))
    tile = tiling.tile_cells(down)
    if not tiling.needs_tiles(geometry, grid, tile, pixels.shape[0] * pixels.shape[1]):
        return np.asarray(model.analysis(*[tiling.edge_pad(array, down) for array, _ in inputs]))[0]
    # Tiles pad at the image's end themselves: no padded copy of a large image.
    return tiling.run(model.analysis, inputs, grid, 1, geometry.analysis_halo, tile, geometry.shape_step)[0]


def check_transform_size(model, grid, height: int, width: int) -> None:
    """A clear error, before anything is decoded, for an image the model cannot transform here (whole-image models
    only: tiled ones transform any size)."""
    tiling.needs_tiles(model.geometry, tuple(grid), tiling.tile_cells(model.geometry.downsampling), height * width)


def synthesis(model, inputs, height: int, width: int, transform) -> np.ndarray:
    """transform(*arrays, height, width) -> the decoded image [height, width, 3], in tiles when it is large.

    inputs: (array [1, ...], pixels per cell of the first array's grid) pairs, the first on the model's grid (a latent
    cell, or an sr model's base pixel)."""
    geometry = model.geometry
    scale = geometry.downsampling
    grid = inputs[0][0].shape[1:3]
    tile = tiling.tile_cells(scale)
    if not tiling.needs_tiles(geometry, grid, tile, height * width):
        return np.asarray(transform(*[array for array, _ in inputs], height, width))[0]
    image = tiling.run(lambda *windows: transform(*windows, windows[0].shape[1] * scale, windows[0].shape[2] * scale),
                       inputs, grid, scale, geometry.synthesis_halo, tile, geometry.shape_step)
    return image[0, :height, :width]


def code_latents(symbols: np.ndarray, model) -> Tuple[bool, bytes]:
    """(uniform table used, bytes): symbols [..., C] range coded with the model's table or the uniform one, whichever
    is shorter."""
    from tfgc.codec import entropy

    table = model.coding_table()
    learned = entropy.range_encode(symbols, table)
    uniform = entropy.range_encode(symbols, entropy.uniform_table(table.shape[0], model.config.model.levels))
    return (True, uniform) if len(uniform) < len(learned) else (False, learned)


def decoding_table(header: bitstream.Header, model) -> np.ndarray:
    """The table a file's latents were coded with."""
    from tfgc.codec import entropy

    table = model.coding_table()
    return entropy.uniform_table(table.shape[0], model.config.model.levels) if header.uniform_table else table


def latent_shape(header: bitstream.Header, model_config) -> Tuple[int, int, int]:
    m = model_config.model
    return -(-header.height // m.downsampling), -(-header.width // m.downsampling), m.latent_channels


def latent_report(result: EncodeResult) -> dict:
    """The rate figures of a file of latents (gc and sc)."""
    return {
        "height": result.height, "width": result.width, "bytes": len(result.data), "bpp": result.bpp,
        "payload_bpp": result.payload_bits / result.pixels, "bound_bpp": result.bound_bits / result.pixels,
        "estimated_bpp": result.estimated_bits / result.pixels,
        "coding": "uniform table" if result.uniform_table else "model prior",
    }


def graph_functions(model):
    """The whole gc codec as TensorFlow functions (the codec SavedModel's): the same bytes as GCCodec, with
    tensorflow-compression's range coder inside the graph."""
    import tensorflow as tf
    import tensorflow_compression as tfc

    from tfgc.codec import bitstream, entropy, graph

    deployed = model.deployed_functions()
    analysis, synthesis = deployed["analysis"], deployed["synthesis"]
    m = model.config.model
    table = tf.constant(model.coding_table(), tf.int32)
    uniform = tf.constant(entropy.uniform_table(m.latent_channels, m.levels), tf.int32)
    fingerprint = model.fingerprint()
    family = model.family

    def channel_index(shape):
        return tf.broadcast_to(tf.range(m.latent_channels, dtype=tf.int32), shape)

    def range_encode(symbols, coding_table):
        handle = tfc.create_range_encoder([], coding_table)
        handle = tfc.entropy_encode_index(handle, channel_index(tf.shape(symbols)), symbols)
        return tfc.entropy_encode_finalize(handle)

    def compress_pixels(image):
        symbols = analysis(image[None])["symbols"][0]
        learned, plain = range_encode(symbols, table), range_encode(symbols, uniform)
        use_uniform = tf.strings.length(plain) < tf.strings.length(learned)
        flags = tf.cast(use_uniform, tf.int64) * bitstream.FLAG_UNIFORM_TABLE
        payload = tf.where(use_uniform, plain, learned)
        size = tf.shape(image)
        return {"bitstream": graph.pack(family, flags, fingerprint, size[0], size[1], payload)}

    def compress(image):
        pixels = tf.io.decode_image(image, channels=3, dtype=tf.uint8, expand_animations=False)
        return compress_pixels(pixels)

    def decode(data, extra_inputs):
        flags, height, width, payload = graph.unpack(data, family, fingerprint)
        coding_table = tf.where(tf.equal(flags, bitstream.FLAG_UNIFORM_TABLE), uniform, table)
        shape = tf.stack([-(-height // m.downsampling), -(-width // m.downsampling), m.latent_channels])
        handle = tfc.create_range_decoder(payload, coding_table)
        handle, symbols = tfc.entropy_decode_index(handle, channel_index(shape), shape, tf.int32)
        ok = tfc.entropy_decode_finalize(handle)
        with tf.control_dependencies([tf.debugging.Assert(ok, ["entropy-coded payload does not decode"])]):
            image = synthesis(symbols[None], tf.stack([height, width]), *extra_inputs)["image"][0]
        return {"image": image}

    # A fidelity-controlled model's alpha is decompress's second input, as it is synthesis's third.
    decompress_inputs = [tf.TensorSpec([], tf.string, name="bitstream")] + list(synthesis.input_signature[2:])
    if m.fidelity_control:
        def decompress(bitstream, alpha):
            return decode(bitstream, [alpha])
    else:
        def decompress(bitstream):
            return decode(bitstream, [])
    # No AutoGraph: the functions have no Python control flow on tensors, and AutoGraph warned that it could not
    # convert these closures.
    return {
        "compress": tf.function(compress, input_signature=[tf.TensorSpec([], tf.string, name="image")],
                                autograph=False),
        "compress_pixels": tf.function(compress_pixels, autograph=False,
                                       input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")]),
        "decompress": tf.function(decompress, input_signature=decompress_inputs, autograph=False),
    }


class GCCodec(FamilyCodec):
    family = "gc"
    chooses_rate = True

    def encode(self, pixels: np.ndarray, described: Described, **options) -> EncodeResult:
        from tfgc.codec import entropy

        model = described.load()
        height, width = pixels.shape[:2]
        symbols = analysis(model, pixels)
        use_uniform, latents = code_latents(symbols, model)
        header = bitstream.Header(self.family, bitstream.FLAG_UNIFORM_TABLE if use_uniform else 0,
                                  model_fingerprint(model), height, width)
        levels = model.config.model.levels
        return EncodeResult(bitstream.pack(header, latents), height, width, use_uniform, int(symbols.size),
                            symbols.size * math.log2(levels), entropy.ideal_bits(symbols, model.coding_table()),
                            family=self.family)

    def at_rate(self, pixels, target_bpp, model):
        from tfgc.codec.api import encode

        result = encode(pixels, model)
        return result, result.fits(target_bpp)

    def decode(self, header, payload, model, alpha):
        from tfgc.codec import entropy

        symbols = entropy.range_decode(payload, decoding_table(header, model), latent_shape(header, model.config))
        return synthesis(model, [(symbols[None], 1)], header.height, header.width,
                         lambda s, h, w: model.synthesis(s, h, w, alpha=alpha))

    def report(self, result: EncodeResult) -> dict:
        return latent_report(result)

    def summary(self, result: EncodeResult) -> str:
        r = self.report(result)
        return (f"{r['bytes']} bytes, {r['bpp']:.4f} bpp ({r['coding']}; payload {r['payload_bpp']:.4f} bpp, "
                f"model estimate {r['estimated_bpp']:.4f} bpp, bound {r['bound_bpp']:.4f} bpp)")

    def graph_functions(self, model):
        return graph_functions(model)

    def parity_inputs(self, model, image):
        return np.asarray(model.analysis(image[None])), [], []


CODEC = GCCodec()
