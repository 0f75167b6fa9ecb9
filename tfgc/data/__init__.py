"""Input data: the tf.data pipelines that training reads, and what they are made of.

- images: folders of photographs and the bundled ones, random crops, the sr family's on-the-fly base images
- base_layer: the sr family's base images of whole photographs, coded once and cached
- semantic: the sc family's photographs with label maps (the Cityscapes layout)
- labels: label sets, label maps and preservation masks
- scenes: procedural street scenes with label maps (python -m tfgc.scenes)

TensorFlow is imported on first use: listing and checking a folder needs none.
"""

from tfgc.data.base_layer import (BASE_CACHE_ENV, BaseLayerImage, base_layer_dataset, base_layer_images,
                                  base_layer_validation_dataset, default_base_cache)
from tfgc.data.images import (BUNDLED_DIR, IMAGE_EXTENSIONS, bundled_images, list_images, super_resolution_example,
                              training_dataset, validation_dataset)
from tfgc.data.semantic import (IMAGE_SUFFIX, LABEL_SUFFIX, check_label_maps, semantic_pairs,
                                semantic_training_dataset, semantic_validation_dataset)

__all__ = [
    "BASE_CACHE_ENV", "BaseLayerImage", "base_layer_dataset", "base_layer_images", "base_layer_validation_dataset",
    "default_base_cache", "BUNDLED_DIR", "IMAGE_EXTENSIONS", "bundled_images", "list_images",
    "super_resolution_example", "training_dataset", "validation_dataset", "IMAGE_SUFFIX", "LABEL_SUFFIX",
    "check_label_maps", "semantic_pairs", "semantic_training_dataset", "semantic_validation_dataset",
]
