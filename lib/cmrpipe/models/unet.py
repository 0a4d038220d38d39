"""Paper A's 2D U-Net (Appendix B) for SAX myocardium and cavity, its input normalisation and training schedule.

Paper A, Appendix B:

    "The contracting path consisted of a repeated application of two 3×3 convolutions with
    batch normalization, each followed by zero-padding, a ReLU and a 2×2 max pooling
    operation with stride 2 for downsampling. Every step in the expansive path consisted of
    an upsampling of the feature map followed by a 2×2 convolution with batch normalization,
    followed by zero-padding and a ReLU. This was followed by a concatenation with the
    corresponding feature map from the contracting path, and two 3×3 convolutions with batch
    normalization, each followed by zero-padding and a ReLU. At the second last layer, a 3×3
    convolution was performed followed by zero-padding and a ReLU, and at the final layer a
    1×1 convolution was used to map each 16-component feature vector to the desired number
    of three classes. In total the network had 24 convolutional layers."

With ``depth`` poolings the network has ``2 depth`` convolutions in the contracting path,
2 at the bottom, ``3 depth`` in the expansive path and 2 in the head: ``5 depth + 4``
convolutional layers, so the paper's 24 fix ``depth = 4`` (:data:`PAPER_DEPTH`): 256 x 256
inputs reach 16 x 16 at the bottom. "Zero-padding" is read as ``padding="same"``: every
convolution keeps the size, and the output has the size of the input.

What the paper leaves open, and what is used here:

- the widths: ``base_filters`` in the first level, doubling at each pooling (the U-Net the
  paper cites, Ronneberger et al. 2015, has 64, 128, ..., 1024); the ``paper`` profile sets 64;
- the upsampling: nearest neighbour (2 x 2 repetition), then the 2 x 2 convolution halves
  the channels;
- batch normalisation goes between each convolution and its ReLU, in the blocks where the
  paper names it (not in the 16-feature head convolution); those convolutions have no
  bias, which batch normalisation would cancel;
- the initial weights ("random values"): He normal, as in Ronneberger et al.;
- the optimiser ("stochastic gradient descent"): plain SGD, no momentum, since the paper
  names none (:func:`paper_optimizer`); batch size and epoch count are not given either
  (they are run parameters).

Everything here uses ``keras`` and ``keras.ops`` only, so it runs under the TensorFlow,
JAX and PyTorch backends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from cmrpipe.io.labels import BACKGROUND, CAVITY, MYOCARDIUM

PAPER_DEPTH = 4
"""Poolings of the paper's U-Net: ``5 * 4 + 4 = 24`` convolutional layers."""

N_CLASSES = len((BACKGROUND, CAVITY, MYOCARDIUM))
"""Output channels, in the order of the mask codes of :mod:`cmrpipe.io.labels`."""

HEAD_FILTERS = 16
"""Features of the second last (3 x 3) convolution: "each 16-component feature vector"."""

BN_MOMENTUM = 0.9
"""Momentum of the batch-normalisation moving statistics (not stated in the paper): 0.9 rather than
Keras' 0.99, so that a short CPU training run ends with inference statistics that match its weights."""
PAPER_INITIAL_LR = 1e-3
PAPER_HOLD_EPOCHS = 10
PAPER_STEP_EPOCHS = 5
PAPER_LR_FACTOR = math.sqrt(2.0)


def conv_layer_count(depth: int = PAPER_DEPTH) -> int:
    """Convolutional layers of :func:`build_unet` for a given number of poolings.

    Examples
    --------
    >>> conv_layer_count()
    24
    """
    return 5 * depth + 4


def _conv_bn_relu(x, filters: int, kernel_size: int, name: str):
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_unet(base_filters: int = 64, depth: int = PAPER_DEPTH, n_classes: int = N_CLASSES,
               input_shape: tuple[int | None, int | None, int] = (None, None, 1),
               name: str = "unet_2d") -> keras.Model:
    """The 2D U-Net of Paper A, Appendix B (24 convolutional layers at ``depth=4``).

    Contracting path: at each of ``depth`` levels, two 3 x 3 convolutions, each with batch
    normalisation and a ReLU, then 2 x 2 max pooling (stride 2). Bottom: two more such
    convolutions. Expansive path: at each level, 2 x upsampling and a 2 x 2 convolution
    (batch normalisation, ReLU) to the level's width, concatenation with the contracting
    path's feature map of that level, and two 3 x 3 convolutions (batch normalisation,
    ReLU). Head: a 3 x 3 convolution to 16 features with a ReLU, and a 1 x 1 convolution
    to ``n_classes`` with a pixelwise softmax. Level ``l`` (0 at full size, ``depth`` at
    the bottom) has ``base_filters * 2**l`` features. In all ``5 * depth + 4``
    convolutional layers: 24 for the paper's ``depth=4``.

    Parameters
    ----------
    base_filters : int
        Features of the first level (the ``unet_base_filters`` run parameter). The number of
        parameters grows as ``base_filters**2``.
    depth : int
        Number of 2 x 2 poolings; keep :data:`PAPER_DEPTH` for the paper's network.
    n_classes : int
        Output classes; channel ``k`` is the probability of mask code ``k``
        (:data:`~cmrpipe.io.labels.BACKGROUND`, :data:`~cmrpipe.io.labels.CAVITY`,
        :data:`~cmrpipe.io.labels.MYOCARDIUM`).
    input_shape : (rows, cols, channels) tuple
        ``rows`` and ``cols`` may be None (any size at call time) or ints; either way
        the image size must be divisible by ``2**depth`` (16 for the paper's network).
    name : str
        Name of the model.

    Returns
    -------
    keras.Model
        From ``(batch, rows, cols, channels)`` float images (normalised with
        :func:`normalise_images`) to ``(batch, rows, cols, n_classes)`` class probabilities
        that sum to 1 over the last axis.

    Raises
    ------
    ValueError
        If ``base_filters`` or ``depth`` is below 1, ``n_classes`` below 2, or a given
        image size is not divisible by ``2**depth``.
    """
    if base_filters < 1 or depth < 1 or n_classes < 2:
        raise ValueError(f"need base_filters >= 1, depth >= 1 and n_classes >= 2, got "
                         f"{base_filters}, {depth}, {n_classes}")
    rows, cols, _ = input_shape
    for size in (rows, cols):
        if size is not None and size % 2**depth:
            raise ValueError(f"image size {rows} x {cols} is not divisible by 2**{depth} = {2**depth}")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        filters = base_filters * 2**level
        x = _conv_bn_relu(x, filters, 3, f"down{level}_a")
        x = _conv_bn_relu(x, filters, 3, f"down{level}_b")
        skips.append(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"down{level}_pool")(x)
    x = _conv_bn_relu(x, base_filters * 2**depth, 3, "bottom_a")
    x = _conv_bn_relu(x, base_filters * 2**depth, 3, "bottom_b")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_upsample")(x)
        x = _conv_bn_relu(x, filters, 2, f"up{level}_up")
        x = layers.Concatenate(name=f"up{level}_concat")([skips[level], x])
        x = _conv_bn_relu(x, filters, 3, f"up{level}_a")
        x = _conv_bn_relu(x, filters, 3, f"up{level}_b")
    x = layers.Conv2D(HEAD_FILTERS, 3, padding="same", activation="relu",
                      kernel_initializer="he_normal", name="head_conv")(x)
    outputs = layers.Conv2D(n_classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def normalise_images(images, axes: Sequence[int] = (-2, -1), eps: float = 1e-8) -> np.ndarray:
    """Per-image zero-mean, unit-SD intensities ("normalized to have a zero mean and a unit standard deviation").

    Parameters
    ----------
    images : (..., rows, cols) array-like
        One or more images; each is normalised over ``axes`` on its own. Not changed.
    axes : sequence of int
        The axes of one image: ``(-2, -1)`` for ``(..., rows, cols)``, ``(1, 2)`` for a
        ``(n, rows, cols, 1)`` batch.
    eps : float
        Images with an intensity SD at or below ``eps`` (constant images) are only
        centred, giving zeros rather than a division by zero.

    Returns
    -------
    float32 array, the shape of ``images``
        Mean 0 and population SD (``ddof=0``) 1 over ``axes``, per image.

    Examples
    --------
    >>> normalise_images([[1.0, 3.0], [1.0, 3.0]])
    array([[-1.,  1.],
           [-1.,  1.]], dtype=float32)
    >>> normalise_images(np.full((2, 2), 7.0))
    array([[0., 0.],
           [0., 0.]], dtype=float32)
    """
    x = np.asarray(images, dtype=np.float32)
    axes = tuple(axes)
    # float32 pixels, float64 sums: E[x^2] - E[x]^2 loses nothing at image intensities, at a tenth of the time
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    sd = np.sqrt(np.maximum(np.square(x, dtype=np.float64).mean(axis=axes, keepdims=True) - mean**2, 0.0))
    out = x - mean.astype(np.float32)
    out /= np.where(sd > eps, sd, 1.0).astype(np.float32)
    return out


def paper_learning_rate(epoch: int, initial_lr: float = PAPER_INITIAL_LR, hold_epochs: int = PAPER_HOLD_EPOCHS,
                        step_epochs: int = PAPER_STEP_EPOCHS, factor: float = PAPER_LR_FACTOR) -> float:
    """The learning rate of Paper A's U-Net at a (zero-based) epoch.

    "The initial learning rate was 0.001 and was kept at this value for the first ten
    epochs, after which it was reduced by the square-root of two after every fifth epoch."
    Read as: epochs 0-9 at 1e-3, 10-14 at 1e-3 / sqrt(2), 15-19 at 1e-3 / 2, and so on,
    so the rate is held for exactly ten epochs, then for five.

    Parameters
    ----------
    epoch : int
        Zero-based epoch, as Keras counts them.
    initial_lr, hold_epochs, step_epochs, factor
        The schedule: ``initial_lr`` for ``hold_epochs`` epochs, then divided by
        ``factor`` at the start of every block of ``step_epochs`` epochs.

    Returns
    -------
    float

    Examples
    --------
    >>> [round(paper_learning_rate(e) * 1e3, 4) for e in (0, 9, 10, 14, 15, 20)]
    [1.0, 1.0, 0.7071, 0.7071, 0.5, 0.3536]
    """
    if epoch < hold_epochs:
        return float(initial_lr)
    return float(initial_lr / factor ** (1 + (epoch - hold_epochs) // step_epochs))


def learning_rate_callback(initial_lr: float = PAPER_INITIAL_LR, hold_epochs: int = PAPER_HOLD_EPOCHS,
                           step_epochs: int = PAPER_STEP_EPOCHS,
                           factor: float = PAPER_LR_FACTOR) -> keras.callbacks.LearningRateScheduler:
    """A Keras callback that sets :func:`paper_learning_rate` at the start of each epoch."""

    def schedule(epoch: int, lr: float) -> float:
        return paper_learning_rate(epoch, initial_lr, hold_epochs, step_epochs, factor)

    return keras.callbacks.LearningRateScheduler(schedule)


def paper_optimizer(momentum: float = 0.0) -> keras.optimizers.SGD:
    """Paper A's optimiser: "stochastic gradient descent" from lr 1e-3 (no momentum is stated)."""
    return keras.optimizers.SGD(learning_rate=PAPER_INITIAL_LR, momentum=momentum)
