"""cmrpipe.segment: the network grid, Dice, QC, per-subject measures, and the predict path."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cmrpipe import segment
from cmrpipe.io.labels import BACKGROUND, CAVITY, MYOCARDIUM
from cmrpipe.io.store import StoredSubject


def ring_labels(rows: int, cols: int, centre, r_endo: float, r_epi: float) -> np.ndarray:
    rr, cc = np.mgrid[:rows, :cols]
    d = np.hypot(rr - centre[0], cc - centre[1])
    return np.where(d <= r_endo, CAVITY, np.where(d <= r_epi, MYOCARDIUM, BACKGROUND)).astype(np.uint8)


@pytest.mark.parametrize("shape, size", [((160, 256), 128), ((192, 208), 256), ((100, 60), 64), ((64, 64), 64)])
def test_grid_round_trip_keeps_every_pixel_the_grid_holds(shape, size):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (2,) + shape).astype(np.uint8)
    grid = segment.NetworkGrid(*shape, size)
    on_grid = grid.labels_in(labels)
    assert on_grid.shape == (2, size, size)
    back = grid.labels_out(np.eye(3)[on_grid])  # one-hot "probabilities"
    window = (slice(None),) + grid.image_window
    assert np.array_equal(back[window], labels[window])
    outside = np.ones(shape, bool)
    outside[grid.image_window] = False
    assert (back[:, outside] == BACKGROUND).all()
    assert np.array_equal(grid.images_in(labels.astype(float))[(slice(None),) + grid.grid_window], labels[window])


def test_grid_centres_the_image():
    grid = segment.NetworkGrid(160, 256, 128)
    image = np.zeros((1, 160, 256))
    image[0, 79:81, 127:129] = 1.0  # the 2 x 2 centre
    assert np.argwhere(grid.images_in(image)[0]).mean(axis=0).tolist() == [63.5, 63.5]


def test_dice():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    assert segment.dice(a, a) == 1.0
    assert segment.dice(a, ~a) == 0.0
    assert np.isnan(segment.dice(np.zeros(4, bool), np.zeros(4, bool)))


def test_qc_finds_a_hole_and_an_empty_frame_but_not_the_ends():
    labels = np.zeros((6, 2, 20, 20), np.uint8)
    labels[1:5, 0] = ring_labels(20, 20, (10, 10), 4, 6)  # ED: slices 1-4; the ends 0 and 5 are empty
    labels[[1, 2, 4], 1] = ring_labels(20, 20, (10, 10), 3, 6)  # ES: slice 3 lost
    problems = segment.qc_problems("k", labels, {"ED": 0, "ES": 1})
    assert [(p["phase"], p["slice"]) for p in problems] == [("ES", 3)]
    labels[:, 1] = 0
    assert segment.qc_problems("k", labels, {"ES": 1})[0]["problem"] == "no cavity predicted on any slice"


def make_subject(n_slices: int = 8, n_frames: int = 6, es: int = 3) -> tuple[StoredSubject, np.ndarray]:
    """A subject whose cavity shrinks to frame ``es`` and back; contours on slices 1..n-2 at ED and ES."""
    rows, cols = 48, 40
    radii = 9.0 - 4.0 * np.clip(1.0 - np.abs(np.arange(n_frames) - es) / es, 0.0, 1.0)  # smallest at es
    labels = np.zeros((n_slices, n_frames, rows, cols), np.uint8)
    for f, r in enumerate(radii):
        labels[1:-1, f] = ring_labels(rows, cols, (24, 20), r, r + 4)
    contoured = np.zeros((2, n_slices), bool)
    contoured[:, 1:-1] = True
    contours = np.stack([labels[:, 0], labels[:, es]]) * contoured[:, :, None, None]
    images = (labels * 100 + 10).astype(np.int16)
    subject = StoredSubject(key="s1", protocol="mesa", sax_images=images, sax_affine_ijk_to_lps=np.eye(4),
                            pixel_spacing_mm=np.array([1.5, 2.0]), pitch_mm=10.0, ed_frame=0, es_frame=es,
                            contours=contours.astype(np.uint8), contoured=contoured, inlinevf=None, lax={},
                            lax_affine_ijk_to_lps={}, landmarks=None)
    return subject, labels


def test_a_perfect_prediction_agrees_with_the_manual_measures():
    subject, labels = make_subject()
    row, dice_rows, qc = segment.subject_results("s1", subject, labels, bsa_m2=2.0)
    assert row["es_frame_auto"] == 3 and row["ed_frame_auto"] == 0 and row["qc_pass"] and not qc
    for name in segment.MEASURE_NAMES:
        assert row[f"auto_{name}"] == pytest.approx(row[f"manual_{name}"])
        assert row[f"full_{name}"] == pytest.approx(row[f"manual_{name}"])  # every LV slice is contoured
    assert row["manual_lvedvi_ml_m2"] == pytest.approx(row["manual_lvedv_ml"] / 2.0)
    cavity_ed = (labels[:, 0] == CAVITY).sum() * 1.5 * 2.0 * 10.0 / 1000
    assert row["manual_lvedv_ml"] == pytest.approx(cavity_ed)
    assert len(dice_rows) == 2 * 6 and all(d["dice_cavity"] == 1.0 for d in dice_rows)


def test_table4_comparison_uses_only_the_contoured_slices():
    subject, labels = make_subject()
    contoured = subject.contoured.copy()
    contoured[:, 1] = False  # the core lab left out the most basal LV slice
    subject = StoredSubject(**{**subject.__dict__, "contoured": contoured,
                               "contours": subject.contours * contoured[:, :, None, None]})
    row, dice_rows, _ = segment.subject_results("s1", subject, labels, bsa_m2=2.0)
    assert row["auto_lvedv_ml"] == pytest.approx(row["manual_lvedv_ml"])
    assert row["full_lvedv_ml"] > row["auto_lvedv_ml"]  # the automated pipeline measures that slice too
    assert len(dice_rows) == 2 * 5


class ThresholdModel:
    """Stands in for a Keras model: per image, its darkest pixels background, its brightest cavity, the rest myocardium."""

    def predict(self, x, batch_size=16, verbose=0):
        x = x[..., 0]
        low, high = x.min(axis=(1, 2), keepdims=True), x.max(axis=(1, 2), keepdims=True)
        background = (x <= low + 1e-3) | (high - low < 1e-3)
        cavity = ~background & (x >= high - 1e-3)
        return np.stack([background, cavity, ~background & ~cavity], axis=-1).astype(np.float32)


def test_predict_stack_returns_labels_on_the_image_grid():
    subject, labels = make_subject()
    images = np.where(labels == CAVITY, 300, np.where(labels == MYOCARDIUM, 100, 0)).astype(np.int16)
    predicted = segment.predict_stack(ThresholdModel(), images, size=64)
    assert predicted.shape == labels.shape and predicted.dtype == np.uint8
    assert (predicted == labels).mean() > 0.99


def test_split_keys_segment_every_included_mesa_subject_not_trained_on():
    index = pd.DataFrame({"key": list("abcdefg"), "protocol": ["mesa"] * 6 + ["ukb"],
                          "status": ["included"] * 5 + ["excluded", "included"],
                          "seg_split": ["train", "validation", "test", "", "", "", "train"]})
    keys = segment.split_keys(index)
    assert keys == {"train": ["a"], "validation": ["b"], "test": ["c"], "segment": ["c", "d", "e"]}


def test_qc_checks_the_labelled_es_even_when_the_predicted_es_differs():
    subject, labels = make_subject(n_frames=8, es=3)
    predicted = labels.copy()
    predicted[1:-1, 4] = ring_labels(48, 40, (24, 20), 4.0, 8.0)  # the predicted cavity is smallest at frame 4
    predicted[3, 3][predicted[3, 3] == CAVITY] = BACKGROUND  # a hole at the labelled ES, slice 3
    row, _, qc = segment.subject_results("s1", subject, predicted, bsa_m2=2.0)
    assert row["es_frame_auto"] == 4 and not row["qc_pass"]
    assert {(q["phase"], q["slice"]) for q in qc} >= {("ES", 3)}
    assert any("core lab drew it" in q["problem"] for q in qc)


def test_body_surface_area_is_dubois_from_height_and_weight():
    covariates = pd.DataFrame({"height_cm": [170.0, np.nan], "weight_kg": [70.0, 80.0], "bsa_m2": [9.9, 2.0]},
                              index=pd.Index(["a", "b"], name="key"))
    assert segment.body_surface_area_m2(covariates, "a") == pytest.approx(1.8097, abs=1e-3)  # not the 9.9 given
    with pytest.raises(ValueError, match="no height_cm in covariates.csv"):
        segment.body_surface_area_m2(covariates, "b")
    with pytest.raises(ValueError, match="no height_cm or weight_kg"):
        segment.body_surface_area_m2(covariates, "nobody")
    without = covariates.drop(columns=["height_cm"])
    with pytest.raises(ValueError, match="no height_cm"):
        segment.body_surface_area_m2(without, "a")


def test_a_stray_basal_prediction_fails_the_every_slice_measures_only():
    subject, labels = make_subject(n_slices=8, n_frames=6, es=3)
    contoured = subject.contoured.copy()
    contoured[1, 1] = False  # at ES the base has descended below slice 1
    contours = subject.contours * contoured[:, :, None, None]
    subject = StoredSubject(**{**subject.__dict__, "contoured": contoured, "contours": contours})
    predicted = labels.copy()
    predicted[1, 3] = np.where(predicted[1, 3] == CAVITY, MYOCARDIUM, predicted[1, 3])  # annulus: no cavity
    predicted[0, 3] = ring_labels(48, 40, (24, 20), 3, 5)  # a stray blob in the atrium above
    row, _, qc = segment.subject_results("s1", subject, predicted, bsa_m2=2.0)
    assert row["es_frame_auto"] == 3
    assert not row["qc_pass"] and row["qc_pass_contoured"]
    assert [(q["phase"], q["slice"]) for q in qc] == [("ES (predicted)", 1)]


def test_summary_truth_errors_cover_only_subjects_that_passed_qc():
    names = segment.MEASURE_NAMES
    measures = pd.DataFrame({"key": ["a", "b", "c"], "seg_split": ["test", "test", "segment"],
                             "qc_pass": [True, False, True], "qc_pass_contoured": [True, True, True],
                             **{f"{who}_{n}": [1.0, 2.0, 3.0] for who in ("manual", "auto") for n in names},
                             "full_lvedv_ml": [110.0, 500.0, 95.0], "full_lvmi_g_m2": [60.0, 500.0, 40.0]})
    dice = pd.DataFrame({"key": ["a"], "seg_split": ["test"], "phase": ["ED"], "dice_cavity": [0.9],
                         "dice_myocardium": [0.8]})
    truth = pd.DataFrame({"key": ["a", "b", "c"], "lvedv_ml": [100.0, 100.0, 100.0], "lvmi_g_m2": [50.0, 50.0, 50.0]})
    result = segment.Segmentation(history=pd.DataFrame(), n_training_images={}, model_source="trained", dice=dice,
                                  measures=measures, qc=pd.DataFrame(), exclusions=pd.DataFrame(), truth=truth)
    values = segment.summary_values(result)
    assert values["measures.lvedv_mae_vs_truth_ml"] == pytest.approx(7.5)  # (10 + 5) / 2: b failed QC
    assert values["measures.lvmi_mae_vs_truth_g_m2"] == pytest.approx(10.0)
    assert values["seg.n_qc_fail"] == 1 and values["seg.n_segmented"] == 3
    failed = segment.summary_values(dataclasses.replace(result, measures=measures.assign(qc_pass=False)))
    assert np.isnan(failed["measures.lvedv_mae_vs_truth_ml"])  # nothing passed QC: nothing to compare
