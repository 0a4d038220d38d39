"""Chapter 01's tables: robust to cohorts without covariates, and never showing identifying file names."""

import pandas as pd

from cmrpipe.report import prep as tables
from cmrpipe.report.summary import update_summary


def _index():
    return pd.DataFrame({"key": ["a", "b"], "protocol": ["mesa", "mesa"], "status": ["included", "included"],
                         "subcohort": ["training", "atlas_validation"], "landmark_split": ["train", ""],
                         "seg_split": ["train", ""], "cohort_split": ["", ""]})


def test_table1_says_why_it_is_missing():
    table, numbers = tables.paper_a_table1(tables.table1_data(_index(), pd.DataFrame({"key": ["a", "b"]}), "mesa"))
    assert "no covariates" in table.iloc[0, 0] and numbers.empty
    assert tables.beside_published(table, "A") is table
    table, _ = tables.paper_b_table1(tables.table1_data(_index(), pd.DataFrame({"key": ["a", "b"]}), "ukb"))
    assert "no included subjects" in table.iloc[0, 0]


def test_exclusion_files_are_shown_without_folder_names_or_eids():
    shown = [tables.shown_file(p, "site/PATIENT_123456") for p in
             ("site/PATIENT_123456/SAX/IM_1.dcm", "bulk/4567890_20208_2_0.zip", "labels/contours/x.csv", "")]
    assert shown == ["SAX/IM_1.dcm", "bulk zip, field 20208", "contour file", ""]
    assert not any("123456" in s or "4567890" in s for s in shown)


def test_summary_refuses_non_numbers(tmp_path):
    import pytest

    with pytest.raises(TypeError, match="prep.bad"):
        update_summary(tmp_path, {"prep.bad": [1, 2]})
