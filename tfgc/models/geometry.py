"""What the codec needs to know of a model's networks to cut a large image into tiles: how many pixels make a latent
cell, how far an output depends on its input, and whether the transforms are local at all.

Each model family computes its own (`geometry_for(config)` on its class, next to the networks it describes); exports
record it, so a TFLite or ONNX runtime knows it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class Geometry:
    downsampling: int  # image pixels per latent cell (an sr model: per pixel of the stored base image)
    analysis_halo: int  # cells beyond the encoder's receptive field (0: the family has no learned encoder)
    synthesis_halo: int  # cells beyond the decoder's receptive field
    # Why the transforms need the whole image at once ("instance normalization", "noise channels"), or None when
    # they are local and can run in tiles.
    whole_image: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        return cls(int(data["downsampling"]), int(data["analysis_halo"]), int(data["synthesis_halo"]),
                   data.get("whole_image"))
