"""Segmentation losses: pixelwise cross-entropy, soft Dice, and Paper A's cross-entropy + Dice.

Paper A describes the U-Net's loss twice (Appendix B):

    (1) "The loss function was computed by a pixelwise softmax cost function over the final
    feature map combined with the dice loss function."

    (2) "The loss was calculated as 1 minus the weighted DSC for the myocardium and cavity,
    which was averaged for the slice."

Read alone, (2) would drop the cross-entropy that (1) names. The coherent reading, used
here, takes (2) as the definition of the "dice loss function" of (1):

    loss(slice) = CE(slice) + 1 - (w_cavity DSC_cavity(slice) + w_myo DSC_myo(slice))

- CE is the pixelwise softmax cross-entropy, averaged over the pixels of the slice ("a
  pixelwise softmax cost function over the final feature map"); the model's last layer
  is the softmax.
- DSC is the soft Dice of the softmax probabilities with the one-hot truth, one per class
  and per slice ("averaged for the slice": each image is its own Dice, not the batch
  pooled), for the cavity and the myocardium only (not the background).
- "weighted": the paper gives no weights; the default is 1/2 each, so the Dice term lies
  in [0, 1]. (1) says "combined" without a weight either: the two terms are added with
  weight 1.
- A smoothing count of 1 pixel in the numerator and the denominator of each DSC makes a
  slice where a class is absent from truth and prediction (above the base, below the
  apex) score DSC = 1 rather than 0 / 0.

Keras averages the per-slice values over the batch. All functions take ``y_true`` as a
label map ``(batch, rows, cols)`` of mask codes (:mod:`cmrpipe.io.labels`) or as one-hot
``(batch, rows, cols, n_classes)``, and use ``keras.ops`` only (any backend).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import keras
from keras import ops

from cmrpipe.io.labels import CAVITY, MYOCARDIUM

DICE_WEIGHTS = MappingProxyType({CAVITY: 0.5, MYOCARDIUM: 0.5})
"""Weights of the class Dice scores in the Dice loss (Paper A: "weighted", weights not given)."""

DICE_SMOOTH = 1.0
"""Pixels added to the numerator and denominator of each soft Dice."""


def _one_hot(y_true, y_pred):
    """``y_true`` as one-hot probabilities, the shape and dtype of ``y_pred``."""
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    n_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1 and n_classes != 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        return ops.one_hot(ops.cast(y_true, "int32"), n_classes, dtype=y_pred.dtype), y_pred
    return ops.cast(y_true, y_pred.dtype), y_pred


def pixel_cross_entropy(y_true, y_pred, eps: float = 1e-7):
    """Categorical cross-entropy per pixel, averaged over each image's pixels.

    Parameters
    ----------
    y_true : (batch, rows, cols) int or (batch, rows, cols, n_classes) one-hot
        Truth.
    y_pred : (batch, rows, cols, n_classes) float
        Softmax probabilities.
    eps : float
        Probabilities are clipped to ``[eps, 1]`` before the logarithm.

    Returns
    -------
    (batch,) tensor
        Mean over pixels of ``-log p(true class)``, in nats.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]]], np.float32)  # one 1 x 2 image
    >>> ops.convert_to_numpy(pixel_cross_entropy(np.array([[[1, 0]]]), p)).round(4)
    array([0.3466], dtype=float32)
    """
    t, p = _one_hot(y_true, y_pred)
    per_pixel = -ops.sum(t * ops.log(ops.clip(p, eps, 1.0)), axis=-1)
    return ops.mean(per_pixel, axis=tuple(range(1, len(per_pixel.shape))))


def soft_dice(y_true, y_pred, smooth: float = DICE_SMOOTH):
    """Soft Dice score of each class in each image.

    ``(2 sum(t p) + smooth) / (sum(t) + sum(p) + smooth)`` over the pixels of one image.

    Parameters
    ----------
    y_true : (batch, rows, cols) int or (batch, rows, cols, n_classes) one-hot
        Truth.
    y_pred : (batch, rows, cols, n_classes) float
        Probabilities (or a one-hot prediction, which gives the usual Dice).
    smooth : float
        Pixels added to numerator and denominator: a class absent from both scores 1.

    Returns
    -------
    (batch, n_classes) tensor
        Dice in [0, 1].
    """
    t, p = _one_hot(y_true, y_pred)
    axes = tuple(range(1, len(p.shape) - 1))
    overlap = ops.sum(t * p, axis=axes)
    total = ops.sum(t, axis=axes) + ops.sum(p, axis=axes)
    return (2.0 * overlap + smooth) / (total + smooth)


def dice_loss(y_true, y_pred, weights: Mapping[int, float] = DICE_WEIGHTS, smooth: float = DICE_SMOOTH):
    """One minus the weighted soft Dice of the chosen classes, per image.

    Parameters
    ----------
    y_true : (batch, rows, cols) int or (batch, rows, cols, n_classes) one-hot
        Truth.
    y_pred : (batch, rows, cols, n_classes) float
        Softmax probabilities.
    weights : mapping of class code to weight
        Classes in the loss and their weights (normalised to sum to 1); by default
        cavity and myocardium, 1/2 each.
    smooth : float
        See :func:`soft_dice`.

    Returns
    -------
    (batch,) tensor
        ``1 - sum_k w_k DSC_k / sum_k w_k``, in [0, 1]: 0 for a perfect one-hot prediction.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[[0, 1, 2, 2]]])
    >>> perfect = np.eye(3)[labels]
    >>> float(ops.convert_to_numpy(dice_loss(labels, perfect))[0])
    0.0
    """
    dice = soft_dice(y_true, y_pred, smooth)
    classes = list(weights)
    w = ops.convert_to_tensor([float(weights[k]) for k in classes], dtype=dice.dtype)
    chosen = ops.take(dice, classes, axis=-1)
    return 1.0 - ops.sum(chosen * w, axis=-1) / ops.sum(w)


@keras.saving.register_keras_serializable(package="cmrpipe")
def ce_dice_loss(y_true, y_pred):
    """Paper A's U-Net loss: pixelwise softmax cross-entropy plus the Dice loss, per image.

    ``pixel_cross_entropy(y_true, y_pred) + dice_loss(y_true, y_pred)`` with the default
    weights (cavity and myocardium, 1/2 each) and smoothing; the module docstring says why.
    Pass it to ``model.compile(loss=ce_dice_loss)``.

    Parameters
    ----------
    y_true : (batch, rows, cols) int or (batch, rows, cols, n_classes) one-hot
        Truth.
    y_pred : (batch, rows, cols, n_classes) float
        Softmax probabilities.

    Returns
    -------
    (batch,) tensor
        CE in nats plus Dice loss in [0, 1].
    """
    return pixel_cross_entropy(y_true, y_pred) + dice_loss(y_true, y_pred)
