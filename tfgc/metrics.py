"""Image quality metrics: PSNR, MS-SSIM, a detail-preservation ratio, and FID/KID on 256x256 patches.

All take RGB uint8 arrays [H, W, 3] (FID/KID: lists of them).
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

from tfgc.errors import ConfigError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_FILTER = 11


def psnr(original: np.ndarray, reconstruction: np.ndarray, region: Optional[np.ndarray] = None) -> float:
    """PSNR in dB over all RGB values (or those of the pixels where the boolean `region` [H, W] is true), 8-bit
    peak; inf for identical images. The one PSNR of every report and check (training graphs use
    tfgc.nn.images.unit_range_psnr, the same on [-1, 1] tensors)."""
    error = original.astype(np.float64) - reconstruction.astype(np.float64)
    if region is not None:
        error = error[region]
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ms_ssim_scales(height: int, width: int) -> int:
    """How many of the 5 standard scales fit an image: each needs the 11-tap filter to fit after halving."""
    scales = 5
    while scales > 1 and min(height, width) < (MS_SSIM_FILTER - 1) * 2 ** (scales - 1) + 1:
        scales -= 1
    return scales


def ms_ssim_weights(height: int, width: int) -> tuple:
    """The standard scale weights of the scales an image holds, renormalized to sum to 1."""
    weights = np.array(MS_SSIM_WEIGHTS[:ms_ssim_scales(height, width)])
    return tuple(float(w) for w in weights / weights.sum())


def ms_ssim(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """MS-SSIM (tf.image.ssim_multiscale, 8-bit range). Images under 161 pixels a side use fewer scales, with the
    standard weights of those scales renormalized; Kodak-sized images use all five. About 1 s per 768x512 image on
    2 CPU cores (its 11x11 depthwise Gaussian filters dominate)."""
    import tensorflow as tf

    weights = ms_ssim_weights(*original.shape[:2])
    value = tf.image.ssim_multiscale(tf.constant(original[None], tf.float32),
                                     tf.constant(reconstruction[None], tf.float32),
                                     max_val=255.0, power_factors=weights, filter_size=MS_SSIM_FILTER)
    return float(value[0])


def gradient_energy(image: np.ndarray) -> float:
    """Mean squared gradient magnitude (Sobel, on luma)."""
    import tensorflow as tf

    luma = tf.image.rgb_to_grayscale(tf.constant(image[None], tf.float32))
    edges = tf.image.sobel_edges(luma)
    return float(tf.reduce_mean(tf.reduce_sum(tf.square(edges), axis=-1)))


def detail_ratio(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Gradient-energy ratio, reconstruction / original: 1 keeps as much fine detail (edges, texture) as the original,
    below 1 is blurrier, above 1 has more high-frequency energy than the original (noise, ringing, invented texture).
    It measures amount of detail, not its faithfulness: read it beside PSNR."""
    reference = gradient_energy(original)
    return float("nan") if reference == 0 else gradient_energy(reconstruction) / reference


# ---- FID and KID on 256x256 patches (the HiFiC protocol) ----------------------------------------------------------

PATCH = 256


def patches(image: np.ndarray, size: int = PATCH) -> List[np.ndarray]:
    """Non-overlapping size x size patches, and again shifted by size/2 (HiFiC's protocol for small test sets)."""
    out = []
    height, width = image.shape[:2]
    for offset in (0, size // 2):
        for top in range(offset, height - size + 1, size):
            for left in range(offset, width - size + 1, size):
                out.append(image[top:top + size, left:left + size])
    return out


class InceptionFeatures:
    """InceptionV3 pool features (2048) of uint8 patches resized to 299x299.

    `weights`: a Keras InceptionV3 weights file (no top), "imagenet" (Keras downloads them; needs the network), or
    "random" (tests only: the numbers are then no FID).
    """

    def __init__(self, weights: str):
        import tensorflow as tf

        if weights not in ("imagenet", "random") and not os.path.isfile(weights):
            raise ConfigError(f"Inception weights file {weights} does not exist")
        try:
            self.model = tf.keras.applications.InceptionV3(
                include_top=False, pooling="avg", weights="imagenet" if weights == "imagenet" else None,
                input_shape=(299, 299, 3))
            if weights not in ("imagenet", "random"):
                self.model.load_weights(weights)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load Inception weights {weights}: {e}") from None

    def __call__(self, images: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        import tensorflow as tf

        features = []
        for i in range(0, len(images), batch_size):
            batch = tf.image.resize(tf.constant(np.stack(images[i:i + batch_size]), tf.float32), (299, 299),
                                    method="bilinear")
            batch = tf.keras.applications.inception_v3.preprocess_input(batch)
            features.append(self.model(batch, training=False).numpy().astype(np.float64))
        return np.concatenate(features) if features else np.zeros((0, 2048))


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D]."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    # Tr sqrt(S1 S2) = sum of sqrt of the eigenvalues of S1^1/2 S2 S1^1/2, which is symmetric PSD.
    w, v = np.linalg.eigh(s1)
    s1_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(s1_half @ s2 @ s1_half)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(np.clip(cross, 0, None))))


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 10, subset_size: int = 1000,
        seed: int = 0) -> float:
    """Kernel inception distance: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""
    rng = np.random.default_rng(seed)
    n = min(len(real), len(fake), subset_size)
    dim = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), n, replace=False)]
        y = fake[rng.choice(len(fake), n, replace=False)]
        kxx = (x @ x.T / dim + 1) ** 3
        kyy = (y @ y.T / dim + 1) ** 3
        kxy = (x @ y.T / dim + 1) ** 3
        off = n * (n - 1)
        values.append((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())
    return float(np.mean(values))


def patch_features(features: InceptionFeatures, images: Sequence[np.ndarray]) -> np.ndarray:
    """Inception features of every 256x256 patch of the images."""
    return features([p for image in images for p in patches(image)])


def fid_kid(features: InceptionFeatures, real_features: np.ndarray,
            reconstructions: Sequence[np.ndarray]) -> Optional[dict]:
    """FID and KID between the originals' patch features and the reconstructions' patches; None under 2 patches."""
    if len(real_features) < 2:
        return None
    fake_features = patch_features(features, reconstructions)
    return {"fid": fid(real_features, fake_features), "kid": kid(real_features, fake_features),
            "patches": len(real_features)}
