"""Augmentation of Paper A's segmentation training: geometry kept between image and labels, sizes as read."""

import numpy as np
import pytest

from cmrpipe.models.augment import augment_slice, zoom_slice


def _disc(shape=(64, 64), radius=12.0, centre=(32, 32)):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    return ((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2).astype(np.uint8)


def test_labels_follow_the_image(rng):
    labels = _disc(centre=(30, 38)) + _disc(radius=6.0, centre=(30, 38))  # 2 inside 1: a ring and its centre
    image = labels.astype(float) * 2.0 - 1.0
    for _ in range(5):
        out, out_labels = augment_slice(image, labels, rng, brightness=0.0, contrast=0.0)
        assert out.shape == image.shape and out_labels.shape == labels.shape
        assert set(np.unique(out_labels)) <= {0, 1, 2}
        bright = out > 0.0
        assert (bright == (out_labels > 0)).mean() > 0.97  # the image moved with its labels


def test_zoom_changes_area_by_the_factor_squared():
    labels = _disc(radius=15.0)
    for factor in (0.92, 1.08):
        _, zoomed = zoom_slice(np.zeros(labels.shape), labels, factor)
        assert zoomed.sum() / labels.sum() == pytest.approx(factor**2, rel=0.05)


def test_zoom_rotation_and_intensity_stay_in_the_paper_ranges(rng):
    labels = _disc(radius=15.0)
    image = np.where(labels > 0, 1.0, -1.0)
    ratios, means = [], []
    for _ in range(40):
        out, out_labels = augment_slice(image, labels, rng)
        ratios.append(out_labels.sum() / labels.sum())
        means.append(out[out_labels == 0].mean())
    ratios = np.array(ratios)
    assert ((ratios > 0.92**2 * 0.95) & (ratios < 1.08**2 * 1.05)).all()
    assert (np.abs(ratios - 1) > 0.03).mean() > 0.8  # 3-8 % either way: rarely unchanged
    assert np.ptp(means) > 0.5  # brightness and contrast vary


def test_same_seed_same_result_and_inputs_untouched():
    labels = _disc()
    image = labels.astype(float)
    before = image.copy(), labels.copy()
    a = augment_slice(image, labels, np.random.default_rng(3))
    b = augment_slice(image, labels, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(image, before[0]) and np.array_equal(labels, before[1])
