"""The real chapters, executed with papermill on a small smoke cohort (conftest's ``chapter_run``): the chain
from cohort to store to segmentation."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest


def test_chapters_run_and_write_their_summary_keys(chapter_run):
    params, outcomes, _ = chapter_run
    assert [(o.chapter.id, o.status) for o in outcomes] == [("00", "ran"), ("00b", "ran"), ("01", "ran"), ("03", "ran")]
    summary = json.loads((params.run_dir / "results" / "summary.json").read_text())
    assert summary["prep.n_subjects"] == 32
    assert summary["prep.n_excluded"] == 7 and summary["prep.n_included"] == 25  # the 7 planted faults


def test_data_preparation_finds_every_planted_fault_and_reads_the_truth(chapter_run):
    from cmrpipe.report import prep as tables

    params, _, _ = chapter_run
    store = params.run_dir / "store"
    index, exclusions = pd.read_csv(store / "index.csv"), pd.read_csv(store / "exclusions.csv")
    truth = tables.read_truth(params)
    assert tables.fault_check(truth, exclusions).found.all()
    agreement = tables.truth_check(index, truth)
    for cell in agreement.to_numpy().ravel():
        found, of = cell.split(" / ")
        assert found == of, agreement
    assert {"subcohort", "landmark_split", "seg_split", "mass_split", "cohort_split"} <= set(index.columns)
    for name in ("paperA_table1.csv", "paperB_table1.csv"):
        assert len(pd.read_csv(params.run_dir / "results" / name)) > 20
    for name in ("paperA_fig2.png", "paperB_flow.png"):
        assert (params.run_dir / "figures" / name).stat().st_size > 10_000


def test_segmentation_chapter_trains_segments_and_scores(chapter_run):
    params, _, _ = chapter_run
    run = params.run_dir
    index = pd.read_csv(run / "store" / "index.csv")
    test_keys = set(index.key[index.seg_split == "test"])
    assert len(test_keys) >= 2  # the split's floor for a group of 10 or more
    summary = json.loads((run / "results" / "summary.json").read_text())
    for key in ("seg.dice_myo_mean", "seg.dice_cavity_mean", "measures.lvedvi_r", "measures.lvesvi_r",
                "measures.lvef_r", "measures.lvmi_r", "measures.lvmi_mae_vs_truth_g_m2",
                "measures.lvedv_mae_vs_truth_ml"):
        assert key in summary
    assert 0.0 <= summary["seg.dice_cavity_mean"] <= 1.0
    # the truth error covers the subjects that passed QC (the smoke U-Net, 2 epochs, may pass none: then null)
    passed = summary["seg.n_segmented"] - summary["seg.n_qc_fail"]
    measures = pd.read_csv(run / "results" / "seg_measures.csv")
    assert passed == int(measures.qc_pass.astype(bool).sum())
    mae = summary["measures.lvedv_mae_vs_truth_ml"]
    assert mae >= 0 if passed else mae is None
    dice = pd.read_csv(run / "results" / "seg_dice.csv")
    assert set(dice.key[dice.seg_split == "test"]) == test_keys and set(dice.phase) == {"ED", "ES"}
    for key in ("seg.dice_myo_mean_test", "measures.lvedvi_r_test", "measures.n_subjects", "seg.n_images"):
        assert key in summary
    assert summary["seg.n_images"] >= summary["seg.n_images_test"] > 0
    trained_on = set(index.key[index.seg_split.isin(["train", "validation"])])
    assert not trained_on & set(measures.key) and test_keys <= set(measures.key)
    assert (measures.manual_lvedv_ml > 0).all() and measures.es_frame_auto.between(0, index.n_frames.max() - 1).all()
    for key in test_keys:  # every segmented subject's masks, also as NIfTI on the scanner's grid
        from cmrpipe.io.nifti import nifti_affine
        from cmrpipe.io.store import load_subject
        from cmrpipe.segment import load_masks

        masks = load_masks(run / "segmentation" / "masks", key)
        labels = nib.load(run / "segmentation" / "nifti" / f"{key}_sax_labels.nii.gz")
        assert np.array_equal(np.asarray(labels.dataobj).transpose(2, 3, 0, 1), masks)
        subject = load_subject(run / "store", key)
        assert np.allclose(labels.affine, nifti_affine(subject.sax_affine_ijk_to_lps))
        assert labels.header["pixdim"][4] == pytest.approx(subject.frame_interval_ms, rel=1e-4)
    for name in ("paperA_fig5.png", "paperA_fig6.png", "paperA_seg_training.png"):
        assert (run / "figures" / name).stat().st_size > 10_000


def test_segmentation_chapter_reuses_its_model_and_masks(chapter_run):
    from cmrpipe import segment

    params, _, _ = chapter_run
    run = params.run_dir
    masks = sorted((run / "segmentation" / "masks").glob("*.h5"))
    before = {p: p.stat().st_mtime_ns for p in masks}
    first = pd.read_csv(run / "results" / "seg_measures.csv")
    result = segment.run(params, progress=False)
    assert result.model_source == "reused"
    assert {p: p.stat().st_mtime_ns for p in masks} == before  # nothing predicted again
    pd.testing.assert_frame_equal(pd.read_csv(run / "results" / "seg_measures.csv"), first)

    index_text = (run / "store" / "index.csv").read_text()
    index = pd.read_csv(run / "store" / "index.csv")  # a segmented subject ingested again with new inputs
    changed = str(index.key[index.seg_split == "test"].iloc[0])
    index.loc[index.key == changed, "inputs_sha256"] = "0" * 64
    index.to_csv(run / "store" / "index.csv", index=False)
    assert segment.run(params, progress=False).model_source == "reused"  # the training inputs are unchanged
    again = {p.stem for p in masks if p.stat().st_mtime_ns != before[p]}
    (run / "store" / "index.csv").write_text(index_text)  # the shared run's index as the chapters wrote it
    assert again == {changed}
