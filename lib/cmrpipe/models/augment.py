"""Training-time augmentation of short-axis slices for the segmentation U-Net (Paper A Appendix B).

Paper A: "Data augmentations were performed by rotation, random horizontal / vertical image
flip, zoom, brightness, and contrast. For rotation augmentation, images were randomly rotated
with an angle between 0 and 360 degrees. Bilinear interpolation was applied for the original
MR images, while nearest neighbor interpolation was used for the mask images. For the zoom
augmentation, the MR images were resized by a scalar of 3 to 8 using bicubic interpolation,
and the same operation was applied for the image mask with nearest neighbor interpolation.
The brightness/contrast augmentation randomly adjusted the brightness/contrast of the MR
images by up to ±50%."

The zoom "by a scalar of 3 to 8" cannot be a factor (an image enlarged 3 to 8 times and cropped
back would show a fraction of the heart). We read it as a change of size of 3 to 8 per cent, up
or down: a factor drawn from [0.92, 0.97] or [1.03, 1.08]. Brightness and contrast act on the
normalised image (zero mean, unit SD): ``contrast x image + brightness`` with contrast in
[0.5, 1.5] and brightness in [-0.5, 0.5] SD. Each flip happens with probability 1/2.

NumPy and SciPy only: the data pipeline is the same under every Keras backend.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ZOOM_PCT = (3.0, 8.0)
BRIGHTNESS = 0.5
CONTRAST = 0.5


def zoom_slice(image: np.ndarray, labels: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Magnify about the image centre by ``factor`` (bicubic image, nearest labels), keeping the shape.

    Examples
    --------
    >>> lab = np.zeros((40, 40), np.uint8); lab[10:30, 10:30] = 1
    >>> int(zoom_slice(np.zeros((40, 40)), lab, 1.5)[1].sum())
    900
    """
    image, labels = np.asarray(image, float), np.asarray(labels)
    centre = (np.array(image.shape) - 1) / 2.0
    matrix = np.eye(2) / factor  # output pixel -> input pixel
    offset = centre - matrix @ centre
    out = ndimage.affine_transform(image, matrix, offset, order=3, mode="constant", cval=float(image.min()))
    out_labels = ndimage.affine_transform(labels, matrix, offset, order=0, mode="constant", cval=0)
    return out, out_labels


def augment_slice(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                  zoom_pct: tuple[float, float] = ZOOM_PCT, brightness: float = BRIGHTNESS,
                  contrast: float = CONTRAST) -> tuple[np.ndarray, np.ndarray]:
    """One random augmentation of a normalised slice and its label map, as Paper A describes.

    Parameters
    ----------
    image : (rows, cols) float array
        Normalised (zero mean, unit SD).
    labels : (rows, cols) int array
        Label map (0 background, 1 cavity, 2 myocardium).
    rng : numpy.random.Generator
    zoom_pct : (float, float)
        Size change in per cent, drawn from this range, up or down.
    brightness, contrast : float
        Largest shift (SD units) and largest relative change of contrast.

    Returns
    -------
    (image, labels)
        New arrays of the same shapes and dtypes; the inputs are not changed.
    """
    image = np.asarray(image, float)
    labels_dtype = np.asarray(labels).dtype
    angle = rng.uniform(0.0, 360.0)
    background = float(image.min())
    out = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant", cval=background)
    out_labels = ndimage.rotate(np.asarray(labels), angle, reshape=False, order=0, mode="constant", cval=0)
    if rng.random() < 0.5:
        out, out_labels = out[:, ::-1], out_labels[:, ::-1]
    if rng.random() < 0.5:
        out, out_labels = out[::-1], out_labels[::-1]
    factor = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*zoom_pct) / 100.0
    out, out_labels = zoom_slice(out, out_labels, factor)
    out = rng.uniform(1 - contrast, 1 + contrast) * out + rng.uniform(-brightness, brightness)
    return out.astype(np.float32), np.ascontiguousarray(out_labels).astype(labels_dtype)
