"""Tests of cmrpipe.models.unet and .losses: Paper A's 2D U-Net, its loss, normalisation and schedule."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from cmrpipe.io.labels import BACKGROUND, CAVITY, MYOCARDIUM
from cmrpipe.models.losses import ce_dice_loss, dice_loss, pixel_cross_entropy, soft_dice
from cmrpipe.models.unet import (
    build_unet,
    conv_layer_count,
    learning_rate_callback,
    normalise_images,
    paper_learning_rate,
    paper_optimizer,
)


def numpy(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def disc_ring_labels(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Label maps of a cavity disc inside a myocardial ring, random centres and radii."""
    rows, cols = np.mgrid[:size, :size]
    labels = np.full((n, size, size), BACKGROUND, np.int32)
    for i in range(n):
        centre = rng.uniform(0.4 * size, 0.6 * size, 2)
        r_cavity = rng.uniform(0.1, 0.2) * size
        r_epi = r_cavity + rng.uniform(0.07, 0.12) * size
        dist = np.hypot(rows - centre[0], cols - centre[1])
        labels[i][dist < r_epi] = MYOCARDIUM
        labels[i][dist < r_cavity] = CAVITY
    return labels


def expected_unet_params(f: int, depth: int = 4, n_channels: int = 1, n_classes: int = 3) -> int:
    """Weights of the U-Net of Appendix B, counted from its description.

    A convolution with batch normalisation has k*k*c_in*c_out kernel weights (no bias) and
    4*c_out normalisation weights (gamma, beta, moving mean and variance); the head's two
    convolutions have biases.
    """

    def conv_bn(k, c_in, c_out):
        return k * k * c_in * c_out + 4 * c_out

    widths = [f * 2**level for level in range(depth + 1)]
    total, c_in = 0, n_channels
    for w in widths[:-1]:
        total += conv_bn(3, c_in, w) + conv_bn(3, w, w)
        c_in = w
    total += conv_bn(3, widths[-2], widths[-1]) + conv_bn(3, widths[-1], widths[-1])
    for level in reversed(range(depth)):
        w = widths[level]
        total += conv_bn(2, widths[level + 1], w) + conv_bn(3, 2 * w, w) + conv_bn(3, w, w)
    return total + (9 * f * 16 + 16) + (16 * n_classes + n_classes)


# ---- the network -------------------------------------------------------------------


def test_build_unet_has_24_conv_layers():
    model = build_unet(base_filters=2)
    n_conv = sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)
    assert n_conv == 24 == conv_layer_count()


def test_build_unet_output_is_softmax_of_input_size(rng):
    keras.utils.set_random_seed(1)
    model = build_unet(base_filters=4, input_shape=(None, None, 1))
    for rows, cols in [(32, 32), (48, 64)]:
        images = rng.normal(size=(2, rows, cols, 1)).astype(np.float32)
        probs = numpy(model(images, training=False))
        assert probs.shape == (2, rows, cols, 3)
        assert (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_build_unet_rejects_size_not_divisible_by_16():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*4 = 16"):
        build_unet(base_filters=2, input_shape=(40, 32, 1))


def test_build_unet_params_match_the_description_and_grow_as_width_squared():
    counts = {f: build_unet(base_filters=f).count_params() for f in (2, 4, 6)}
    for f, count in counts.items():
        assert count == expected_unet_params(f)
    # a f**2 + b f + c: the second difference over f = 2, 4, 6 is 8 a, and a > 0
    assert counts[6] - 2 * counts[4] + counts[2] > 0
    # doubling a wide network's width about quadruples its weights
    assert 3.9 < expected_unet_params(64) / expected_unet_params(32) < 4.0


def test_build_unet_paper_width_has_about_31_million_weights():
    # 64 base filters: the widths of Ronneberger et al. (31 M weights in their U-Net)
    assert 30e6 < expected_unet_params(64) < 32e6


# ---- the loss ----------------------------------------------------------------------


def test_dice_loss_perfect_prediction_is_zero(rng):
    labels = disc_ring_labels(3, 32, rng)
    one_hot = np.eye(3, dtype=np.float32)[labels]
    assert numpy(dice_loss(labels, one_hot)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert numpy(dice_loss(one_hot, one_hot)) == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)


def test_dice_loss_disjoint_masks_is_close_to_one():
    labels = np.zeros((1, 32, 32), np.int32)
    labels[0, :8, :8] = CAVITY
    labels[0, :8, 8:16] = MYOCARDIUM
    wrong = np.zeros_like(labels)
    wrong[0, 20:28, 20:28] = CAVITY
    wrong[0, 20:28, 8:16] = MYOCARDIUM
    loss = numpy(dice_loss(labels, np.eye(3, dtype=np.float32)[wrong]))[0]
    assert loss == pytest.approx(1 - 1 / (64 + 64 + 1), abs=1e-6)  # smoothing 1 pixel
    assert loss > 0.99


def test_soft_dice_absent_class_scores_one():
    labels = np.zeros((1, 4, 4), np.int32)  # background only, e.g. above the base
    dice = numpy(soft_dice(labels, np.eye(3, dtype=np.float32)[labels]))
    np.testing.assert_allclose(dice, [[1.0, 1.0, 1.0]])


def test_ce_dice_loss_hand_made_example():
    # one 1 x 3 image: background, cavity, myocardium
    labels = np.array([[[BACKGROUND, CAVITY, MYOCARDIUM]]])
    probs = np.array([[[[0.8, 0.1, 0.1],
                        [0.2, 0.6, 0.2],
                        [0.1, 0.4, 0.5]]]], np.float32)
    ce = -(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3
    # soft Dice with 1 pixel of smoothing; truth has one pixel of each class
    dice_cavity = (2 * 0.6 + 1) / (1 + (0.1 + 0.6 + 0.4) + 1)
    dice_myo = (2 * 0.5 + 1) / (1 + (0.1 + 0.2 + 0.5) + 1)
    dice = 1 - (dice_cavity + dice_myo) / 2
    assert numpy(pixel_cross_entropy(labels, probs))[0] == pytest.approx(ce, rel=1e-5)
    assert numpy(dice_loss(labels, probs))[0] == pytest.approx(dice, rel=1e-5)
    assert numpy(ce_dice_loss(labels, probs))[0] == pytest.approx(ce + dice, rel=1e-5)
    # one-hot truth and a trailing channel axis of labels give the same loss
    assert numpy(ce_dice_loss(np.eye(3)[labels], probs))[0] == pytest.approx(ce + dice, rel=1e-5)
    assert numpy(ce_dice_loss(labels[..., None], probs))[0] == pytest.approx(ce + dice, rel=1e-5)


def test_dice_loss_weights_pick_classes():
    labels = np.array([[[BACKGROUND, CAVITY, MYOCARDIUM]]])
    probs = np.eye(3, dtype=np.float32)[np.array([[[BACKGROUND, CAVITY, BACKGROUND]]])]
    # cavity perfect, myocardium missed: (2*0 + 1) / (1 + 0 + 1) = 1/2
    assert numpy(dice_loss(labels, probs, weights={CAVITY: 1.0}))[0] == pytest.approx(0.0, abs=1e-6)
    assert numpy(dice_loss(labels, probs, weights={MYOCARDIUM: 1.0}))[0] == pytest.approx(0.5)
    assert numpy(dice_loss(labels, probs))[0] == pytest.approx(0.25)


# ---- normalisation -----------------------------------------------------------------


def test_normalise_images_zero_mean_unit_sd_per_image(rng):
    images = rng.normal(size=(5, 16, 24)) * rng.uniform(1, 500, (5, 1, 1)) + rng.uniform(-100, 900, (5, 1, 1))
    before = images.copy()
    out = normalise_images(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_array_equal(images, before)  # the caller's array is untouched


def test_normalise_images_channel_axis(rng):
    images = rng.uniform(0, 1000, (3, 8, 8, 1))
    out = normalise_images(images, axes=(1, 2))
    np.testing.assert_allclose(out[..., 0], normalise_images(images[..., 0]), atol=1e-6)


def test_normalise_images_constant_image_is_finite():
    images = np.stack([np.full((8, 8), 0.1), np.zeros((8, 8)), np.arange(64.0).reshape(8, 8)])
    out = normalise_images(images)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:2], 0.0, atol=1e-6)


# ---- the schedule ------------------------------------------------------------------


def test_paper_learning_rate_values():
    lr = [paper_learning_rate(e) for e in (0, 9, 10, 14, 15, 19, 20)]
    root2 = math.sqrt(2)
    expected = [1e-3, 1e-3, 1e-3 / root2, 1e-3 / root2, 1e-3 / 2, 1e-3 / 2, 1e-3 / (2 * root2)]
    assert lr == pytest.approx(expected, rel=1e-12)


# keras's LearningRateScheduler reads the rate with np.array(variable), which numpy 2 warns about
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_learning_rate_callback_sets_the_optimizer_rate():
    model = build_unet(base_filters=2, input_shape=(16, 16, 1), depth=1)
    model.compile(optimizer=paper_optimizer(), loss=ce_dice_loss)
    callback = learning_rate_callback()
    callback.set_model(model)
    for epoch in (0, 10, 15):
        callback.on_epoch_begin(epoch)
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(
            paper_learning_rate(epoch), rel=1e-6)


def test_paper_optimizer_is_plain_sgd():
    opt = paper_optimizer()
    assert isinstance(opt, keras.optimizers.SGD)
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)
    assert opt.momentum == 0.0


# ---- training ----------------------------------------------------------------------


def test_unet_training_reduces_loss_on_discs_and_rings(rng):
    labels = disc_ring_labels(16, 32, rng)
    intensity = np.array([0.1, 1.0, 0.4])  # background, cavity (bright blood), myocardium
    images = intensity[labels] + rng.normal(0, 0.05, labels.shape)
    x = normalise_images(images)[..., None]
    keras.utils.set_random_seed(0)
    model = build_unet(base_filters=4, input_shape=(32, 32, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=ce_dice_loss)
    history = model.fit(x, labels, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < 0.8 * history[0]
