"""cmrpipe.models.train: the augmented feed, the Dice metrics, fitting, saving and loading."""

import numpy as np
import pytest
from keras import ops

from cmrpipe.io.labels import CAVITY, MYOCARDIUM
from cmrpipe.models import train


def disc_slices(n: int, size: int = 32, seed: int = 0):
    """Normalised images of a bright disc (cavity) in a grey ring (myocardium), and their labels."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[:size, :size]
    images, labels = [], []
    for _ in range(n):
        r0, c0 = rng.uniform(12, 20, 2)
        d = np.hypot(rr - r0, cc - c0)
        lab = np.where(d < 5, CAVITY, np.where(d < 8, MYOCARDIUM, 0)).astype(np.uint8)
        img = np.choose(lab, [0.0, 3.0, 1.0]) + rng.normal(0, 0.1, lab.shape)
        images.append((img - img.mean()) / img.std())
        labels.append(lab)
    return np.array(images, np.float32), np.array(labels)


def test_feed_batches_are_repeatable_and_labels_move_with_images():
    x, y = disc_slices(10)
    a = train.AugmentedSlices(x, y, batch_size=4, seed=3)
    b = train.AugmentedSlices(x, y, batch_size=4, seed=3)
    assert len(a) == 3
    xa, ya = a[1]
    xb, yb = b[1]
    assert xa.shape == (4, 32, 32, 1) and ya.shape == (4, 32, 32) and ya.dtype == np.int32
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert (xa[..., 0][ya == CAVITY].mean() > xa[..., 0][ya == MYOCARDIUM].mean())  # still the bright disc
    a.on_epoch_end()
    assert not np.array_equal(a[1][0], xb)  # a new epoch: new order and augmentations
    plain = train.AugmentedSlices(x, y, batch_size=10, seed=3, augment=False)
    assert sorted(map(bytes, plain[0][1])) == sorted(map(bytes, y.astype(np.int32)))


def test_feed_refuses_mismatched_inputs():
    x, y = disc_slices(4)
    with pytest.raises(ValueError, match="as many label maps"):
        train.AugmentedSlices(x, y[:3], batch_size=2, seed=0)


def test_dice_metrics_score_the_argmax():
    labels = np.array([[[0, 1, 1, 2]]])
    perfect = np.eye(3, dtype=np.float32)[labels]
    assert float(ops.convert_to_numpy(train.dice_cavity(labels, perfect))[0]) == pytest.approx(1.0)
    half = np.eye(3, dtype=np.float32)[np.array([[[0, 1, 0, 2]]])] * 0.9 + 0.03  # one cavity pixel missed
    assert float(ops.convert_to_numpy(train.dice_cavity(labels, half))[0]) == pytest.approx(2 / 3, rel=1e-4)
    assert float(ops.convert_to_numpy(train.dice_myocardium(labels, half))[0]) == pytest.approx(1.0, rel=1e-4)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        train.make_optimizer("rmsprop")
    assert train.make_optimizer("sgd").learning_rate.numpy() == pytest.approx(1e-3)


def test_fit_learns_discs_and_the_saved_model_predicts_the_same(tmp_path):
    x, y = disc_slices(48)
    model, history = train.fit_unet((x[:40], y[:40]), (x[40:], y[40:]), base_filters=4, epochs=6, batch_size=8,
                                    seed=1, optimizer="adam")
    assert list(history.epoch) == [1, 2, 3, 4, 5, 6]
    assert {"loss", "val_loss", "dice_cavity", "val_dice_myocardium", "lr", "train_images_per_s"} <= set(history)
    assert history.loss.iloc[-1] < history.loss.iloc[0]
    assert (history.train_images_per_s > 0).all()
    path = train.save_model(model, tmp_path / "m" / "unet.keras")
    again = train.load_model(path)
    p1, p2 = train.predict_probabilities(model, x[40:]), train.predict_probabilities(again, x[40:])
    assert p1.shape == (8, 32, 32, 3) and np.allclose(p1, p2, atol=1e-5)
    assert not list(tmp_path.glob("m/*.partial*"))
