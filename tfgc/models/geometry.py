"""What the codec needs to know of a model's networks to cut a large image into tiles: how many pixels make a latent
cell, how far an output depends on its input, and whether the transforms are local at all.

Each model family computes its own (`geometry_for(config)` on its class, next to the networks it describes); exports
record it, so a TFLite or ONNX runtime knows it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

# The transforms of a local model see image sizes in steps of this many pixels: an input is edge-replicated up to the
# next step and the output cropped. TensorFlow's oneDNN kernels keep a compiled primitive, with its scratch memory,
# for every input shape they have run (up to 1024 per thread, never freed before), so a process coding images of
# every size grew by megabytes per size; in steps, the shapes are few (and in tiles, the windows all alike).
SHAPE_STEP_PIXELS = 128


@dataclass(frozen=True)
class Geometry:
    downsampling: int  # image pixels per latent cell (an sr model: per pixel of the stored base image)
    analysis_halo: int  # cells beyond the encoder's receptive field (0: the family has no learned encoder)
    synthesis_halo: int  # cells beyond the decoder's receptive field
    # Why the transforms need the whole image at once ("instance normalization", "noise channels"), or None when
    # they are local and can run in tiles.
    whole_image: Optional[str] = None
    # About how many bytes a whole-image transform takes per image pixel at its peak (0: unknown, or a tiled model),
    # so that an image too large for the memory there is refused before the transform allocates it.
    whole_image_bytes_per_pixel: int = 0
    # The step the model's transforms were built with (SHAPE_STEP_PIXELS when it was made), recorded in exports,
    # whose graphs keep it whatever the constant becomes.
    step_pixels: int = SHAPE_STEP_PIXELS

    @property
    def shape_step(self) -> int:
        """Cells (base pixels for sr) that the transforms pad their inputs to multiples of: `step_pixels` for a local
        model; one for a whole-image model, whose normalization would count the padding."""
        return 1 if self.whole_image is not None else max(1, self.step_pixels // self.downsampling)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        # An export without the field was made before the transforms padded to steps: its graphs take any size.
        return cls(int(data["downsampling"]), int(data["analysis_halo"]), int(data["synthesis_halo"]),
                   data.get("whole_image"), int(data.get("whole_image_bytes_per_pixel", 0)),
                   int(data.get("step_pixels", 1)))
