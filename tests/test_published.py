"""Checks of the transcription of the two papers' published numbers.

The data live in ``lib/cmrpipe/report/data/published.csv`` and are read through
``cmrpipe.report.published``.  Paper A is the MESA LV-atlas paper
(``000_c6791dcf1c5c6562.txt``), paper B the ML4H LV-mass paper
(``003_231124add2f4e419.txt``).  Every expected value below was read by hand
from the paper texts, independently of the CSV.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from cmrpipe.report import published

COLUMNS = ["paper", "table", "row", "column", "statistic", "value", "text", "unit", "note"]

A1_COLUMNS = ["MESA CMR", "Landmark Detection", "Segmentation", "Atlas Validation"]


def _s(x) -> str:
    """A CSV string field as str ('' for pandas' NaN / None)."""
    if x is None:
        return ""
    if isinstance(x, float) and math.isnan(x):
        return ""
    return str(x)


@pytest.fixture(scope="module")
def df():
    return published.load()


@pytest.fixture(scope="module")
def records(df):
    out = []
    for r in df.to_dict("records"):
        rec = {c: _s(r[c]) for c in COLUMNS if c != "value"}
        rec["value"] = float(r["value"])
        out.append(rec)
    return out


def _select(records, **kw):
    return [r for r in records if all(r[k] == v for k, v in kw.items())]


# ---------------------------------------------------------------------------
# 1. explicit values, read from the papers by hand
# ---------------------------------------------------------------------------

EXPECTED = [
    # Paper A, Table 1 (demographics)
    ("A", "Table 1", "N", "MESA CMR", "n", 5003),
    ("A", "Table 1", "N", "Atlas Validation", "n", 1052),
    ("A", "Table 1", "Age (years)", "MESA CMR", "mean", 61.5),
    ("A", "Table 1", "Age (years)", "MESA CMR", "sd", 10.1),
    ("A", "Table 1", "Gender: Female", "MESA CMR", "count", 2622),
    ("A", "Table 1", "Gender: Female", "MESA CMR", "pct", 52.4),
    ("A", "Table 1", "SBP (mmHg)", "MESA CMR", "mean", 125.4),
    ("A", "Table 1", "DBP (mmHg)", "MESA CMR", "sd", 10.3),
    ("A", "Table 1", "SBP (mmHg)", "Landmark Detection", "mean", 126.2),
    ("A", "Table 1", "Diabetes: Yes", "Segmentation", "count", 162),
    ("A", "Table 1", "Gender: Female", "Atlas Validation", "pct", 40.9),
    ("A", "Table 1", "Smoking Status: Never", "Atlas Validation", "count", 511),
    ("A", "Table 1", "Framingham Score", "Segmentation", "sd", 9.6),
    # Paper A, Table 2 (landmark distances, mm, and ICC)
    ("A", "Table 2", "2CH LAX", "Auto vs Obs1", "mean", 1.86),
    ("A", "Table 2", "2CH LAX", "Auto vs Obs1", "sd", 1.19),
    ("A", "Table 2", "4CH LAX", "Obs1 vs Obs2", "sd", 1.68),
    ("A", "Table 2", "SAX", "Obs1 vs Obs2", "mean", 2.67),
    ("A", "Table 2", "SAX", "n", "n", 572),
    ("A", "Table 2", "4CH LAX", "ICC value", "icc", 0.996),
    # Paper A, Table 3 (Dice)
    ("A", "Table 3", "Cavity ED", "Median", "median", 0.95),
    ("A", "Table 3", "Cavity ES", "Std Dev", "sd", 0.11),
    ("A", "Table 3", "Myocardium ED", "Q1", "q1", 0.85),
    ("A", "Table 3", "Myocardium ES", "Mean", "mean", 0.90),
    # Paper A, Table 4 (clinical measures)
    ("A", "Table 4", "LVEDVi (ml/m2)", "Correlation coefficient", "r", 0.98),
    ("A", "Table 4", "LVMi (g/m2)", "Correlation coefficient", "p", 0.001),
    ("A", "Table 4", "LVESVi (ml/m2)", "Differences", "mean_diff", -0.46),
    ("A", "Table 4", "LVMi (g/m2)", "Differences", "sd_diff", 6.4),
    # Paper A, Table 5 (AUC)
    ("A", "Table 5", "Cholesterol", "Auto", "auc", 0.54),
    ("A", "Table 5", "Hypertension", "Man", "auc", 0.69),
    ("A", "Table 5", "Diabetes", "Auto", "auc", 0.53),
    # Paper A, Table A-1
    ("A", "Table A-1", "four-chamber", "System trained with independent neural networks", "mean", 3.24),
    ("A", "Table A-1", "short axis", "System trained with our training strategy", "sd", 1.11),
    # Paper A, text
    ("A", "Text", "MESA CMR cohort with adequate MRI data", "N", "n", 5003),
    ("A", "Text", "Segmentation test cases (clinical measures)", "N", "n", 155),
    ("A", "Text", "Segmentation test images", "N", "n", 2465),
    ("A", "Text", "Atlas validation cases", "N", "n", 1052),
    ("A", "Text", "Landmark test cases", "N", "n", 50),
    ("A", "Text", "Landmark network validation exams", "N", "count", 232),
    ("A", "Text", "Atlas Validation sub-cohort (remaining cases)", "N", "count", 2474),
    # Paper B, Table 1
    ("B", "Table 1", "N", "Training set", "n", 33071),
    ("B", "Table 1", "N", "Holdout set", "n", 5393),
    ("B", "Table 1", "Age", "Training set", "mean", 64.2),
    ("B", "Table 1", "Female", "Training set", "count", 17183),
    ("B", "Table 1", "Race/Ethnicity: White", "Holdout set", "pct", 97.1),
    ("B", "Table 1", "HTN", "Training set", "count", 10122),
    ("B", "Table 1", "CMR-derived LV mass (InlineVF, g)", "Holdout set", "sd", 38.2),
    ("B", "Table 1", "CMR-derived LV mass (segmentation, g)", "Training set", "mean", 88.9),
    # Paper B, Table 2
    ("B", "Table 2", "Hypertension: InlineVF", "N events", "n", 11271),
    ("B", "Table 2", "Hypertension: InlineVF", "LVMI (per 1 SD)", "or", 1.43),
    ("B", "Table 2", "Heart failure: Segmentation", "LVH", "or", 4.67),
    ("B", "Table 2", "Heart failure: Segmentation", "LVH", "ci_low", 3.28),
    ("B", "Table 2", "Heart failure: Segmentation", "LVH", "ci_high", 6.49),
    ("B", "Table 2", "Atrial fibrillation: Regression", "LVH (90th percentile)", "or", 0.99),
    ("B", "Table 2", "Heart failure: Regression", "LVH", "ci_high", 7.67),
    # Paper B, text
    ("B", "Text", "ML4H_seg vs manual LV mass", "Pearson r", "r", 0.864),
    ("B", "Text", "ML4H_seg vs manual LV mass", "Pearson r", "ci_low", 0.847),
    ("B", "Text", "ML4H_seg vs manual LV mass", "Pearson r", "ci_high", 0.880),
    ("B", "Text", "ML4H_seg vs manual LV mass", "MAE", "mae", 10.41),
    ("B", "Text", "ML4H_reg vs manual LV mass", "Pearson r", "r", 0.843),
    ("B", "Text", "ML4H_reg vs manual LV mass", "Dunn & Clark P vs ML4H_seg", "p", 0.01),
    ("B", "Text", "Centered InlineVF vs manual LV mass", "MAE", "mae", 14.30),
    ("B", "Text", "Centered InlineVF vs manual LV mass", "MAE", "ci_high", 11.01),
    ("B", "Text", "Recalibrated InlineVF vs manual LV mass", "Pearson r", "r", 0.838),
    ("B", "Text", "InlineVF linear recalibration", "Equation coefficient", "slope", 0.543487),
    ("B", "Text", "InlineVF linear recalibration", "Equation coefficient", "intercept", 5.808005),
    ("B", "Text", "ML4H_seg vs InlineVF (LV blood pool)", "Mean Dice", "dice", 0.955),
    ("B", "Text", "ML4H_seg vs InlineVF (myocardium)", "Mean Dice", "dice", 0.900),
    ("B", "Text", "ML4H_seg vs hand labels (myocardium)", "Dice", "dice", 0.631),
    ("B", "Text", "InlineVF vs hand labels (LV)", "Dice", "dice", 0.890),
    ("B", "Text", "ML4H_seg vs hand labels", "SD of study-level Dice", "sd", 0.083),
    ("B", "Text", "Hand-labeled segmentations", "N", "n", 73),
    ("B", "Text", "Holdout set with manually labeled LV mass", "N", "n", 891),
    ("B", "Text", "Manually labeled LV mass available", "N", "n", 5065),
    ("B", "Text", "Training set (regression model)", "N", "n", 3178),
    ("B", "Text", "CMR-derived LV mass estimates generated", "N", "n", 38574),
    ("B", "Text", "Figure 2 sample with CMR imaging", "N", "n", 38464),
    ("B", "Text", "Table 2 sample", "Total N", "n", 37261),
    ("B", "Text", "Prevalent events: Atrial fibrillation", "N events", "n", 1053),
    ("B", "Text", "ML4H_seg LVH: Hypertension", "Odds ratio (Results text)", "or", 2.76),
    ("B", "Text", "LVH definition", "LVMI threshold men", "threshold", 72),
    ("B", "Text", "LVH definition", "LVMI threshold women", "threshold", 55),
    ("B", "Text", "LV mass from segmentation", "Myocardial density", "value", 1.05),
    ("B", "Text", "LV mass from segmentation", "Pixel depth", "value", 10),
    ("B", "Text", "Model input", "Max Z slices", "n", 13),
    ("B", "Text", "Model input", "Height and width (voxels)", "value", 256),
    ("B", "Text", "Model training", "Batch size", "n", 4),
]


@pytest.mark.parametrize("paper,table,row,column,statistic,expected", EXPECTED)
def test_published_value(paper, table, row, column, statistic, expected):
    got = published.value(paper, table, row, column, statistic)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_value_missing_raises_keyerror():
    with pytest.raises(KeyError):
        published.value("A", "Table 2", "no such row", "Auto vs Obs1", "mean")


# ---------------------------------------------------------------------------
# 2. every record's text is verbatim in its paper, and holds its value
# ---------------------------------------------------------------------------

_NUM = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+)")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``.

    Handles thousands separators ("33,071"), numbers without a leading zero
    (".01" as in "P < .01") and minus signs.  Ranges with an en dash
    ("0.847–0.880") give both ends.
    """
    out = []
    for tok in _NUM.findall(text):
        tok = tok.replace("−", "-").replace(",", "")
        out.append(float(tok))
    return out


def value_in_text(value: float, text: str) -> bool:
    for num in numbers_in(text):
        if math.isclose(num, value, rel_tol=1e-12, abs_tol=1e-12):
            return True
        # "2-3" style hyphenated text would read the 3 as -3; a positive value may match it
        if value >= 0 and math.isclose(abs(num), value, rel_tol=1e-12, abs_tol=1e-12):
            return True
    return False


def test_numbers_in_helper():
    assert numbers_in("33,071") == [33071.0]
    assert value_in_text(0.01, "$P < .01$")
    assert value_in_text(0.001, "0.98 (p<0.001)")
    assert value_in_text(-0.02, "-0.02 (2.6)")
    assert value_in_text(10.3, "71.8 (10.30")
    assert value_in_text(38464, "$N=38,464$")
    assert not value_in_text(1.9, "1.93")
    assert not value_in_text(13.4, "13.46–11.01")
    assert not value_in_text(-0.69, "0.69 (3.3)")


@pytest.fixture(scope="module")
def paper_texts():
    texts = {}
    for paper, path in published.PAPER_FILES.items():
        path = Path(path)
        if not path.exists():
            pytest.skip(f"shared papers folder absent ({path})")
        texts[paper] = path.read_text(encoding="utf-8")
    return texts


def test_texts_are_verbatim(records, paper_texts):
    missing = [
        (r["paper"], r["table"], r["row"], r["column"], r["text"])
        for r in records
        if r["text"] not in paper_texts[r["paper"]]
    ]
    assert not missing, missing


def test_values_appear_in_their_text(records):
    bad = [
        (r["paper"], r["table"], r["row"], r["column"], r["statistic"], r["value"], r["text"])
        for r in records
        if not value_in_text(r["value"], r["text"])
    ]
    assert not bad, bad


def test_records_of_one_cell_share_text(records):
    texts = defaultdict(set)
    for r in records:
        texts[(r["paper"], r["table"], r["row"], r["column"])].add(r["text"])
    # Text records may combine numbers from separate phrases; table cells may not.
    bad = {k: v for k, v in texts.items() if len(v) > 1 and k[1] != "Text"}
    assert not bad, bad


def test_p_below_convention_noted(records):
    for r in records:
        if re.search(r"[pP]\s*<\s*0?\.\d+", r["text"]) and r["statistic"] == "p":
            assert "reported as" in r["note"], r


# ---------------------------------------------------------------------------
# 3. schema
# ---------------------------------------------------------------------------

MIN_RECORDS = {
    # Table 1: 15 rows x 4 columns of cells; N is one number, the rest two
    ("A", "Table 1"): 4 * (1 + 14 * 2),
    # Table 2: 3 rows x (n + 3 distances (mean, sd) + ICC)
    ("A", "Table 2"): 3 * (1 + 3 * 2 + 1),
    ("A", "Table 3"): 4 * 5,
    ("A", "Table 4"): 4 * 2 + 4 * 2,
    ("A", "Table 5"): 5 * 2,
    ("A", "Table A-1"): 3 * 2 * 2,
    ("A", "Text"): 15,
    # Table 1: N + 18 rows x 2 columns, two numbers each
    ("B", "Table 1"): 2 + 18 * 2 * 2,
    # Table 2: 9 rows x (N events + 3 x (or, ci_low, ci_high))
    ("B", "Table 2"): 9 * (1 + 3 * 3),
    ("B", "Text"): 40,
}


def test_columns_exact(df):
    assert list(df.columns) == COLUMNS


def test_value_is_float(df):
    assert str(df["value"].dtype) == "float64"


def test_field_domains(records):
    for r in records:
        assert r["paper"] in {"A", "B"}, r
        assert re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*", r["statistic"]), r
        assert r["row"] and r["column"] and r["text"], r
        assert r["row"] == r["row"].strip() and r["column"] == r["column"].strip(), r
        assert math.isfinite(r["value"]), r
    tables = {(r["paper"], r["table"]) for r in records}
    assert tables == set(MIN_RECORDS)


def test_no_duplicate_keys(records):
    keys = Counter((r["paper"], r["table"], r["row"], r["column"], r["statistic"]) for r in records)
    dups = [k for k, n in keys.items() if n > 1]
    assert not dups, dups


@pytest.mark.parametrize("key,minimum", sorted(MIN_RECORDS.items()))
def test_table_record_counts(records, key, minimum):
    paper, table = key
    assert len(_select(records, paper=paper, table=table)) >= minimum


def test_paper_a_table1_grid(records):
    rows = [
        "N", "Age (years)", "Gender: Female", "Gender: Male", "SBP (mmHg)", "DBP (mmHg)",
        "Heart Rate (bpm)", "Diabetes: Yes", "Diabetes: No", "Hypertension: Yes",
        "Hypertension: No", "Smoking Status: Never", "Smoking Status: Former",
        "Smoking Status: Current", "Framingham Score",
    ]
    t1 = _select(records, paper="A", table="Table 1")
    cells = {(r["row"], r["column"]) for r in t1}
    assert cells == {(row, col) for row in rows for col in A1_COLUMNS}
    # printed order: row by row, then column by column
    seen_rows = list(dict.fromkeys(r["row"] for r in t1))
    assert seen_rows == rows
    for row in rows:
        cols = list(dict.fromkeys(r["column"] for r in t1 if r["row"] == row))
        assert cols == A1_COLUMNS


def test_paper_b_table2_grid(records):
    t2 = _select(records, paper="B", table="Table 2")
    rows = [f"{d}: {m}" for d in ("Hypertension", "Atrial fibrillation", "Heart failure")
            for m in ("InlineVF", "Regression", "Segmentation")]
    assert list(dict.fromkeys(r["row"] for r in t2)) == rows
    for row in rows:
        cols = list(dict.fromkeys(r["column"] for r in t2 if r["row"] == row))
        assert cols == ["N events", "LVMI (per 1 SD)", "LVH", "LVH (90th percentile)"]
        for col in cols[1:]:
            stats = [r["statistic"] for r in t2 if r["row"] == row and r["column"] == col]
            assert stats == ["or", "ci_low", "ci_high"]


def test_table_rows_in_printed_order(records):
    def order(paper, table):
        return list(dict.fromkeys(r["row"] for r in _select(records, paper=paper, table=table)))

    assert order("A", "Table 2") == ["2CH LAX", "4CH LAX", "SAX"]
    assert order("A", "Table 3") == ["Cavity ED", "Cavity ES", "Myocardium ED", "Myocardium ES"]
    assert order("A", "Table 4") == ["LVEDVi (ml/m2)", "LVESVi (ml/m2)", "LVEF (%)", "LVMi (g/m2)"]
    assert order("A", "Table 5") == ["Hypertension", "Diabetes", "Smoking status", "Cholesterol", "Calcium score"]
    assert order("A", "Table A-1") == ["two-chamber", "four-chamber", "short axis"]
    b1 = order("B", "Table 1")
    assert b1[:3] == ["N", "Age", "Female"]
    assert b1[-1] == "CMR-derived LV mass (segmentation, g)"


def test_records_of_a_table_are_contiguous(records):
    """Each (paper, table) block is one run in the file (the CSV order renders the tables)."""
    runs = [(r["paper"], r["table"]) for r in records]
    blocks = [k for i, k in enumerate(runs) if i == 0 or runs[i - 1] != k]
    assert len(blocks) == len(set(blocks))


def test_units(records):
    for r in records:
        if r["statistic"] in {"r", "p", "auc", "dice", "icc", "or", "slope"}:
            assert r["unit"] == "", r
        if r["statistic"] == "pct":
            assert r["unit"] == "%", r
        if r["statistic"] in {"n", "count"}:
            assert r["unit"] == "count", r
    for r in _select(records, paper="A", table="Table 2"):
        if r["statistic"] in {"mean", "sd"}:
            assert r["unit"] == "mm"


# ---------------------------------------------------------------------------
# 4. flagged typos
# ---------------------------------------------------------------------------

def test_mae_ci_typo_flagged(records):
    recs = [r for r in records if r["paper"] == "B" and r["text"] == "MAE 14.30, 95% CI 13.46–11.01"]
    assert {r["statistic"] for r in recs} == {"mae", "ci_low", "ci_high"}
    for r in recs:
        assert r["note"].startswith("typo:"), r
    hi = [r for r in recs if r["statistic"] == "ci_high"][0]
    assert hi["value"] == 11.01


def test_missing_bracket_typo_flagged(records):
    recs = [r for r in records if r["paper"] == "A" and r["text"] == "71.8 (10.30"]
    assert {r["statistic"]: r["value"] for r in recs} == {"mean": 71.8, "sd": 10.3}
    for r in recs:
        assert r["note"].startswith("typo:"), r
        assert (r["row"], r["column"]) == ("DBP (mmHg)", "MESA CMR")


def test_significance_markers_explained(records):
    for r in records:
        if r["table"] != "Text" and r["text"].rstrip()[-1:] in {"*", "$", "#"}:
            assert "marker " + r["text"].rstrip()[-1] in r["note"], r


def test_notes_are_typo_flags_or_explanations(records):
    for r in records:
        note = r["note"]
        if "typo" in note.lower():
            assert note.startswith("typo:"), r
        if "inconsistent" in note.lower():
            assert note.startswith("inconsistent:"), r


def test_inconsistencies_flagged(records):
    flagged = {(r["paper"], r["table"], r["row"], r["column"]) for r in records
               if r["note"].startswith("inconsistent:")}
    assert flagged == {
        ("A", "Table 1", "Gender: Female", "Landmark Detection"),
        ("A", "Table 1", "Gender: Male", "Landmark Detection"),
        ("A", "Text", "Atlas Validation sub-cohort (remaining cases)", "N"),
        ("B", "Text", "CMR-derived LV mass estimates generated", "N"),
    }


# ---------------------------------------------------------------------------
# 5. consistency
# ---------------------------------------------------------------------------

GROUPS_A1 = {
    "Gender": ["Gender: Female", "Gender: Male"],
    "Diabetes": ["Diabetes: Yes", "Diabetes: No"],
    "Hypertension": ["Hypertension: Yes", "Hypertension: No"],
    "Smoking Status": ["Smoking Status: Never", "Smoking Status: Former", "Smoking Status: Current"],
}


def _get(records, **kw):
    found = _select(records, **kw)
    assert len(found) == 1, (kw, found)
    return found[0]


@pytest.mark.parametrize("column", A1_COLUMNS)
def test_a_table1_gender_sums_to_n(records, column):
    n = _get(records, paper="A", table="Table 1", row="N", column=column)["value"]
    recs = [_get(records, paper="A", table="Table 1", row=row, column=column, statistic="count")
            for row in GROUPS_A1["Gender"]]
    total = sum(r["value"] for r in recs)
    if any(r["note"].startswith("inconsistent:") for r in recs):
        assert total != n  # flagged discrepancy is real
    else:
        assert total == n


@pytest.mark.parametrize("column", A1_COLUMNS)
@pytest.mark.parametrize("group", sorted(GROUPS_A1))
def test_a_table1_categories_at_most_n_and_pct_consistent(records, column, group):
    n = _get(records, paper="A", table="Table 1", row="N", column=column)["value"]
    counts = [_get(records, paper="A", table="Table 1", row=row, column=column, statistic="count")["value"]
              for row in GROUPS_A1[group]]
    pcts = [_get(records, paper="A", table="Table 1", row=row, column=column, statistic="pct")["value"]
            for row in GROUPS_A1[group]]
    assert sum(counts) <= n
    assert sum(pcts) == pytest.approx(100, abs=0.15)
    # percentages are of the participants with non-missing data for the variable
    denom = sum(counts)
    for c, p in zip(counts, pcts):
        assert abs(100 * c / denom - p) <= 0.051, (group, column, c, p, denom)


def test_a_text_cohort_arithmetic(records):
    def v(row, stat="n"):
        return _get(records, paper="A", table="Text", row=row, column="N", statistic=stat)["value"]

    assert v("Training sub-cohort (Cardiac Atlas Project)", "count") + \
        v("Atlas Validation sub-cohort (remaining cases)", "count") == v("MESA CMR cohort with adequate MRI data")
    assert v("Landmark network training exams", "count") + v("Landmark network validation exams", "count") \
        == v("Landmark network exams (training + validation)")
    assert v("Landmark network exams (training + validation)") + v("Landmark test exams (inter-observer)") \
        == v("Landmark detection exams")
    assert v("MESA CMR cohort with adequate MRI data") == published.value("A", "Table 1", "N", "MESA CMR", "n")
    assert v("Landmark detection exams") == published.value("A", "Table 1", "N", "Landmark Detection", "n")
    assert v("Segmentation exams") == published.value("A", "Table 1", "N", "Segmentation", "n")
    assert v("Atlas validation cases") == published.value("A", "Table 1", "N", "Atlas Validation", "n")
    # landmark points = 2 per image
    for view, row in (("2CH", "2CH LAX"), ("4CH", "4CH LAX"), ("SAX", "SAX")):
        images = _get(records, paper="A", table="Text", row="Landmark test images", column=view)["value"]
        points = _get(records, paper="A", table="Text", row="Landmark test points", column=view)["value"]
        assert points == 2 * images
        assert published.value("A", "Table 2", row, "n", "n") == points


def test_a_table2_icc_matches_results_text(records):
    iccs = [published.value("A", "Table 2", row, "ICC value", "icc") for row in ("2CH LAX", "4CH LAX", "SAX")]
    assert iccs == [0.998, 0.996, 0.995]
    assert all(0.9 < x <= 1 for x in iccs)


@pytest.mark.parametrize("row", ["Cavity ED", "Cavity ES", "Myocardium ED", "Myocardium ES"])
def test_a_table3_quartiles_ordered(row):
    q1 = published.value("A", "Table 3", row, "Q1", "q1")
    med = published.value("A", "Table 3", row, "Median", "median")
    q3 = published.value("A", "Table 3", row, "Q3", "q3")
    mean = published.value("A", "Table 3", row, "Mean", "mean")
    assert 0 <= q1 <= med <= q3 <= 1
    assert 0.8 < mean <= 1  # Results: "Median and mean Dice scores were high (>0.8)"
    assert 0.8 < med <= 1


def test_a_table4_matches_results_text():
    cols = ["LVEDVi (ml/m2)", "LVESVi (ml/m2)", "LVEF (%)", "LVMi (g/m2)"]
    for col in cols:
        assert published.value("A", "Table 4", col, "Correlation coefficient", "r") > 0.9
    # "less than 1 ml/m2 for volumes, only 0.7% for ejection fraction, and 3 g/m2 for mass"
    for col in cols[:2]:
        assert abs(published.value("A", "Table 4", col, "Differences", "mean_diff")) < 1
    assert round(published.value("A", "Table 4", "LVEF (%)", "Differences", "mean_diff"), 1) == 0.7
    assert published.value("A", "Table 4", "LVMi (g/m2)", "Differences", "mean_diff") == 3


def test_a_table5_only_cholesterol_marked(records):
    marked = [r["row"] for r in _select(records, paper="A", table="Table 5") if "*" in r["text"]]
    assert marked == ["Cholesterol"]
    assert published.value("A", "Table 5", "Cholesterol", "Auto", "auc") > \
        published.value("A", "Table 5", "Cholesterol", "Man", "auc")


@pytest.mark.parametrize("row", ["two-chamber", "four-chamber", "short axis"])
def test_a_tablea1_strategy_improves(row):
    ind = published.value("A", "Table A-1", row, "System trained with independent neural networks", "mean")
    ours = published.value("A", "Table A-1", row, "System trained with our training strategy", "mean")
    assert ours < ind


def test_ci_contains_estimate_unless_flagged(records):
    cells = defaultdict(dict)
    notes = defaultdict(str)
    for r in records:
        key = (r["paper"], r["table"], r["row"], r["column"])
        cells[key][r["statistic"]] = r["value"]
        notes[key] += r["note"]
    checked = 0
    for key, stats in cells.items():
        if "ci_low" not in stats:
            continue
        est = [stats[s] for s in ("or", "r", "mae") if s in stats]
        assert len(est) == 1, key
        ok = stats["ci_low"] <= est[0] <= stats["ci_high"]
        if "typo:" in notes[key]:
            assert not ok, key
        else:
            assert ok, key
            checked += 1
    assert checked >= 27 + 3 + 5


def test_b_table2_n_events_match_text():
    for disease, n in (("Hypertension", 11271), ("Atrial fibrillation", 1053), ("Heart failure", 241)):
        for method in ("InlineVF", "Regression", "Segmentation"):
            assert published.value("B", "Table 2", f"{disease}: {method}", "N events", "n") == n
        assert published.value("B", "Text", f"Prevalent events: {disease}", "N events", "n") == n
        assert n < published.value("B", "Text", "Table 2 sample", "Total N", "n")


def test_b_text_ors_match_table2():
    for disease in ("Hypertension", "Atrial fibrillation", "Heart failure"):
        for stat in ("or", "ci_low", "ci_high"):
            assert published.value("B", "Text", f"ML4H_seg LVH: {disease}", "Odds ratio (Results text)", stat) == \
                published.value("B", "Table 2", f"{disease}: Segmentation", "LVH", stat)


def test_b_segmentation_lvh_strongest():
    # Results: LVH defined using ML4H_seg "consistently demonstrated the strongest associations"
    for disease in ("Hypertension", "Atrial fibrillation", "Heart failure"):
        seg = published.value("B", "Table 2", f"{disease}: Segmentation", "LVH", "or")
        others = [published.value("B", "Table 2", f"{disease}: {m}", "LVH", "or") for m in ("InlineVF", "Regression")]
        assert seg > max(others)


def test_b_table1_categories(records):
    for col in ("Training set", "Holdout set"):
        n = published.value("B", "Table 1", "N", col, "n")
        race = [r for r in _select(records, paper="B", table="Table 1", column=col, statistic="count")
                if r["row"].startswith("Race/Ethnicity: ")]
        assert len(race) == 6
        assert sum(r["value"] for r in race) == n
        for r in _select(records, paper="B", table="Table 1", column=col, statistic="count"):
            pct = published.value("B", "Table 1", r["row"], col, "pct")
            assert abs(100 * r["value"] / n - pct) <= 0.051, (r["row"], col)


def test_b_sizes_consistent():
    train = published.value("B", "Table 1", "N", "Training set", "n")
    hold = published.value("B", "Table 1", "N", "Holdout set", "n")
    assert train == published.value("B", "Text", "Training set (segmentation model)", "N", "n")
    assert hold == published.value("B", "Text", "Holdout set", "N", "n")
    assert published.value("B", "Text", "Holdout set with manually labeled LV mass", "N", "n") < hold
    assert published.value("B", "Text", "Training set (regression model)", "N", "n") < \
        published.value("B", "Text", "Manually labeled LV mass available", "N", "n")
    assert published.value("B", "Text", "Table 2 sample", "Total N", "n") <= \
        published.value("B", "Text", "Figure 2 sample with CMR imaging", "N", "n") <= \
        published.value("B", "Text", "CMR-derived LV mass estimates generated", "N", "n")


def test_b_dice_ordering():
    # hand labels: ML4H_seg beats InlineVF for both structures
    for s in ("LV", "myocardium"):
        assert published.value("B", "Text", f"ML4H_seg vs hand labels ({s})", "Dice", "dice") > \
            published.value("B", "Text", f"InlineVF vs hand labels ({s})", "Dice", "dice")
    assert published.value("B", "Text", "ML4H_seg vs hand labels", "SD of study-level Dice", "sd") < \
        published.value("B", "Text", "InlineVF vs hand labels", "SD of study-level Dice", "sd")


def test_b_correlation_ranking():
    r = {m: published.value("B", "Text", f"{m} vs manual LV mass", "Pearson r", "r")
         for m in ("ML4H_seg", "ML4H_reg", "Centered InlineVF", "Recalibrated InlineVF")}
    assert r["ML4H_seg"] > r["ML4H_reg"] > r["Recalibrated InlineVF"] > r["Centered InlineVF"]


@pytest.mark.parametrize("paper_table", [("A", "Table 1"), ("A", "Table 2"), ("A", "Table 3"), ("A", "Table 4"),
                                         ("A", "Table 5"), ("A", "Table A-1"), ("B", "Table 1"),
                                         ("B", "Table 2")])
def test_table_cells_hold_their_numbers_in_printed_order(records, paper_table):
    """Each printed table cell's numbers, read left to right, are its records' values in order."""
    paper, table = paper_table
    cells = defaultdict(list)
    for r in _select(records, paper=paper, table=table):
        cells[(r["row"], r["column"])].append(r)
    for key, recs in cells.items():
        printed = [n for n in numbers_in(recs[0]["text"]) if not (recs[0]["statistic"] == "n" and n < 0)]
        assert [abs(n) if n < 0 and r["value"] >= 0 else n for n, r in zip(printed, recs)] == \
            [r["value"] for r in recs], key
        assert len(printed) == len(recs), key
