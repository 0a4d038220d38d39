"""Keras 3 models, losses and training helpers (``keras`` and ``keras.ops`` only, any backend).

- :mod:`cmrpipe.models.unet`: Paper A's 2D U-Net for SAX cavity and myocardium, per-image
  normalisation, the learning-rate schedule and optimiser.
- :mod:`cmrpipe.models.losses`: pixelwise cross-entropy, soft Dice, and Paper A's CE + Dice.

Only this package imports Keras.
"""

from cmrpipe.models.losses import ce_dice_loss, dice_loss, pixel_cross_entropy, soft_dice
from cmrpipe.models.unet import (
    build_unet,
    conv_layer_count,
    learning_rate_callback,
    normalise_images,
    paper_learning_rate,
    paper_optimizer,
)

__all__ = [
    "build_unet",
    "ce_dice_loss",
    "conv_layer_count",
    "dice_loss",
    "learning_rate_callback",
    "normalise_images",
    "paper_learning_rate",
    "paper_optimizer",
    "pixel_cross_entropy",
    "soft_dice",
]
