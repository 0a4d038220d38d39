"""Training and inference of the segmentation U-Net: the augmented batch feed, Dice metrics, fit, predict.

The training feed (:class:`AugmentedSlices`) draws every batch's augmentations from a
generator seeded by ``(seed, epoch, batch)``, so a run is repeatable whatever order Keras
asks for batches in. Images arrive on the network grid, normalised (see
:func:`cmrpipe.models.unet.normalise_images`); labels are mask codes.

:func:`fit_unet` builds, compiles and trains Paper A's U-Net with its loss (CE + Dice), its
optimiser and learning-rate schedule, and returns the model with a per-epoch history that
includes the training speed in images per second.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import ops

from cmrpipe.io.labels import CAVITY, MYOCARDIUM
from cmrpipe.models.augment import augment_slice
from cmrpipe.models.losses import ce_dice_loss, soft_dice
from cmrpipe.models.unet import PAPER_INITIAL_LR, build_unet, learning_rate_callback, paper_optimizer
from cmrpipe.params import SEGMENTATION_OPTIMIZERS

OPTIMIZERS = SEGMENTATION_OPTIMIZERS
"""``sgd``: Paper A's plain stochastic gradient descent; ``adam``: a faster optimiser for small CPU runs.
Both start at lr 1e-3 and follow the paper's schedule."""


class AugmentedSlices(keras.utils.PyDataset):
    """Shuffled, augmented batches of normalised slices and their label maps.

    Parameters
    ----------
    images : (n, rows, cols) float32 array
        Normalised images on the network grid.
    labels : (n, rows, cols) uint8 array
        Mask codes.
    batch_size : int
    seed : int
        Seeds the shuffling and augmentation; ``(seed, epoch, batch)`` fixes a batch.
    augment : bool
        Paper A's augmentation (:func:`cmrpipe.models.augment.augment_slice`), or none.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, augment: bool = True):
        super().__init__(workers=1, use_multiprocessing=False)
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"need as many label maps as images, and some: {len(images)} images, {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.augment = int(batch_size), int(seed), augment
        self.epoch = 0
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, batch: int):
        rows = self._order[batch * self.batch_size:(batch + 1) * self.batch_size]
        x, y = self.images[rows].copy(), self.labels[rows].copy()
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, batch])
            for i in range(len(rows)):
                x[i], y[i] = augment_slice(x[i], y[i], rng)
        return x[..., None], y.astype("int32")

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._permutation()


def _hard_dice(y_true, y_pred, code: int):
    """Dice of class ``code`` per image between the truth and the argmax prediction."""
    hard = ops.one_hot(ops.argmax(y_pred, axis=-1), y_pred.shape[-1], dtype=y_pred.dtype)
    return soft_dice(y_true, hard, smooth=1e-6)[:, code]


@keras.saving.register_keras_serializable(package="cmrpipe")
def dice_cavity(y_true, y_pred):
    """Dice of the LV cavity per image, from the argmax prediction (a metric, not a loss)."""
    return _hard_dice(y_true, y_pred, CAVITY)


@keras.saving.register_keras_serializable(package="cmrpipe")
def dice_myocardium(y_true, y_pred):
    """Dice of the myocardium per image, from the argmax prediction (a metric, not a loss)."""
    return _hard_dice(y_true, y_pred, MYOCARDIUM)


def make_optimizer(name: str) -> keras.optimizers.Optimizer:
    """The optimiser called ``name`` (:data:`OPTIMIZERS`), at Paper A's initial learning rate.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name == "sgd":
        return paper_optimizer()
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=PAPER_INITIAL_LR)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


class _EpochClock(keras.callbacks.Callback):
    """Records each epoch's training time (its batches only: no validation, no callbacks) and learning rate."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seconds.append(0.0)

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds[-1] += time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(ops.convert_to_numpy(self.model.optimizer.learning_rate)))


class _EpochProgress(keras.callbacks.Callback):
    """A progress bar over epochs with the last epoch's loss and Dice (for notebooks and terminals)."""

    def __init__(self, epochs: int):
        super().__init__()
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, desc="training U-Net", unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_dice_cavity", "val_dice_myocardium")}
        self.bar.set_postfix(shown)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


def fit_unet(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray] | None, *,
             base_filters: int, epochs: int, batch_size: int, seed: int, optimizer: str = "sgd",
             progress: bool = False) -> tuple[keras.Model, pd.DataFrame]:
    """Train Paper A's U-Net on normalised slices (augmented) and return it with its history.

    Parameters
    ----------
    train, validation : (images, labels)
        ``(n, size, size)`` float32 normalised images and uint8 label maps on the network grid;
        ``size`` divisible by 16. Validation is not augmented; None for no validation.
    base_filters, epochs, batch_size : int
        The run's ``unet_base_filters``, ``segmentation_epochs``, ``segmentation_batch_size``.
    seed : int
        Seeds the weights, the shuffling and the augmentation.
    optimizer : {"sgd", "adam"}
        See :data:`OPTIMIZERS`; the learning rate follows Paper A's schedule either way.
    progress : bool
        A progress bar over epochs (loss and validation Dice after each).

    Returns
    -------
    model : keras.Model
    history : DataFrame
        One row per epoch: ``epoch`` (1-based), ``loss``, ``dice_cavity``, ``dice_myocardium``
        and their ``val_`` twins, ``lr``, ``seconds``, ``train_images_per_s``.
    """
    keras.utils.set_random_seed(int(seed))
    images, labels = train
    size = images.shape[1]
    model = build_unet(base_filters=base_filters, input_shape=(size, size, 1))
    model.compile(optimizer=make_optimizer(optimizer), loss=ce_dice_loss, metrics=[dice_cavity, dice_myocardium])
    feed = AugmentedSlices(images, labels, batch_size, seed)
    clock = _EpochClock()
    val = None if validation is None else (validation[0][..., None], validation[1].astype("int32"))
    callbacks = [learning_rate_callback(), clock] + ([_EpochProgress(int(epochs))] if progress else [])
    fitted = model.fit(feed, validation_data=val, epochs=int(epochs), verbose=0, callbacks=callbacks)
    history = pd.DataFrame(fitted.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    history["lr"] = clock.rates
    history["seconds"] = clock.seconds
    history["train_images_per_s"] = len(images) / np.asarray(clock.seconds)
    return model, history


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class probabilities ``(n, size, size, classes)`` of normalised ``(n, size, size)`` images."""
    return model.predict(np.asarray(images, np.float32)[..., None], batch_size=batch_size, verbose=0)


def save_model(model: keras.Model, path: str | Path) -> Path:
    """Save a model in the Keras format (``.keras``), written whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.keras")
    model.save(tmp)
    tmp.replace(path)
    return path


def load_model(path: str | Path) -> keras.Model:
    """Load a model saved by :func:`save_model`, for inference (not compiled)."""
    return keras.saving.load_model(Path(path), compile=False)
