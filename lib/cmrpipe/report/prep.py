"""Tables of the data-preparation chapter: each paper's Table 1 computed from the cohort, beside the published one."""

from __future__ import annotations

import re

import pandas as pd

from cmrpipe.report import published
from cmrpipe.stats.table1 import Variable, table1, table1_numbers

_YES_NO = ("No", "Yes")

PAPER_A_VARIABLES = [  # Paper A Table 1, in its order; the Framingham score is not in our covariates
    Variable("age_years", label="Age (years)"),
    Variable("gender", "categorical", label="Gender", levels=("Female", "Male")),
    Variable("sbp_mmhg", label="SBP (mmHg)"),
    Variable("dbp_mmhg", label="DBP (mmHg)"),
    Variable("hr_bpm", label="Heart Rate (bpm)"),
    Variable("diabetes_yn", "categorical", label="Diabetes", levels=_YES_NO),
    Variable("hypertension_yn", "categorical", label="Hypertension", levels=_YES_NO),
    Variable("smoking", "categorical", label="Smoking Status", levels=("Never", "Former", "Current")),
]
PAPER_B_VARIABLES = [  # Paper B Table 1; race, myocardial infarction and the mass rows are not covariates here
    Variable("age_years", label="Age"),
    Variable("female", "binary", label="Female"),
    Variable("sbp_mmhg", label="Systolic blood pressure (mm Hg)"),
    Variable("dbp_mmhg", label="Diastolic blood pressure (mm Hg)"),
    Variable("hypertension", "binary", label="HTN"),
    Variable("diabetes", "binary", label="Diabetes"),
    Variable("heart_failure", "binary", label="Heart failure"),
    Variable("atrial_fibrillation", "binary", label="Atrial fibrillation"),
]
TABLE1_COVARIATES = ("age_years", "sex", "sbp_mmhg", "dbp_mmhg", "hr_bpm", "diabetes", "hypertension",
                     "smoking_status", "heart_failure", "atrial_fibrillation")
PAPER_A_GROUPS = {"Landmark Detection": "in_landmark", "Segmentation": "in_segmentation",
                  "Atlas Validation": "in_atlas_validation"}
PAPER_B_GROUPS = {"train": "Training set", "holdout": "Holdout set"}


def table1_data(index: pd.DataFrame, covariates: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The included subjects of one protocol with their covariates, coded as the tables print them.

    Parameters
    ----------
    index : DataFrame
        The store's index with the split columns of :func:`cmrpipe.splits.assign_splits`.
    covariates : DataFrame
        key, age_years, sex (F/M), sbp_mmhg, dbp_mmhg, hr_bpm and 0/1 risk factors.
    """
    rows = index[(index.protocol == protocol) & (index.status == "included")]
    data = rows.merge(covariates.drop(columns=["protocol"], errors="ignore"), on="key", how="left")
    for column in TABLE1_COVARIATES:  # a cohort without covariates: the tables say so instead of failing
        if column not in data:
            data[column] = pd.NA
    data["gender"] = data.sex.map({"F": "Female", "M": "Male"})
    data["female"] = (data.sex == "F").astype(int)
    for column in ("diabetes", "hypertension"):
        data[f"{column}_yn"] = data[column].map({0: "No", 1: "Yes"})
    if "smoking_status" in data:
        data["smoking"] = data.smoking_status.str.capitalize()
    data["in_landmark"] = data.get("landmark_split", pd.Series("", index=data.index)).fillna("") != ""
    data["in_segmentation"] = data.get("seg_split", pd.Series("", index=data.index)).fillna("") != ""
    data["in_atlas_validation"] = data.get("subcohort", pd.Series("", index=data.index)) == "atlas_validation"
    return data


def _no_table(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if len(data) and data.sex.notna().any():
        return None
    why = "no included subjects" if not len(data) else "no covariates in the cohort's manifest"
    return pd.DataFrame({"Table 1": [f"not computed: {why}"]}), pd.DataFrame()


def paper_a_table1(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper A Table 1 from the cohort: MESA CMR and its sub-cohorts, each tested against its complement.

    Returns
    -------
    (table, numbers)
        The printed table and its tidy numbers (see :func:`cmrpipe.stats.table1.table1_numbers`).
    """
    if (empty := _no_table(data)) is not None:
        return empty
    groups = {name: column for name, column in PAPER_A_GROUPS.items() if data[column].any()}
    testable = all(not data[column].all() for column in groups.values())  # a tiny cohort may have no rest
    args = dict(group=groups, variables=PAPER_A_VARIABLES, overall="MESA CMR",
                test="each_vs_rest" if testable else None)
    return table1(data, style="paper_a", **args), table1_numbers(data, **args)


def paper_b_table1(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper B Table 1 from the cohort: training set against holdout set."""
    if (empty := _no_table(data)) is not None:
        return empty
    data = data.assign(table1_group=data.cohort_split.map(PAPER_B_GROUPS))
    groups = [g for g in PAPER_B_GROUPS.values() if (data.table1_group == g).any()]
    args = dict(group="table1_group", variables=PAPER_B_VARIABLES, groups=groups, overall=False,
                test="across_groups" if len(groups) > 1 else None)
    return table1(data, style="paper_b", **args), table1_numbers(data, **args)


def beside_published(table: pd.DataFrame, paper: str, name: str = "Table 1") -> pd.DataFrame:
    """Each reproduced cell with the published cell of the same row and column beneath its header.

    Rows the paper does not have (or cells it does not print) show an empty published cell.
    """
    if not isinstance(table.index, pd.MultiIndex):  # nothing computed: the table says why
        return table
    printed = published.table(paper, name)
    out = {}
    for column in table.columns:
        group = re.sub(r" \(N = [\d,]+\)$", "", column)
        out[(group, "reproduced")] = table[column]
        if group in printed.columns:
            rows = [f"{v}: {level}" if level else v for v, level in table.index]
            out[(group, f"published (Paper {paper})")] = [printed[group].get(r, "") for r in rows]
    frame = pd.DataFrame(out, index=table.index)
    n_row = pd.DataFrame({c: [f"{_n(table, c[0])}" if c[1] == "reproduced" else printed.get(c[0], {}).get("N", "")]
                          for c in frame.columns}, index=pd.MultiIndex.from_tuples([("N", "")]))
    return pd.concat([n_row, frame.fillna("")])


def _n(table: pd.DataFrame, group: str) -> str:
    for column in table.columns:
        match = re.match(rf"^{re.escape(group)} \(N = ([\d,]+)\)$", column)
        if match:
            return match.group(1)
    return ""


def counts_table(index: pd.DataFrame) -> pd.DataFrame:
    """Subjects per protocol: in the manifest, included, excluded, and with each kind of label."""
    included = index[index.status == "included"]
    out = pd.DataFrame({"in manifest": index.groupby("protocol").size(),
                        "included": included.groupby("protocol").size(),
                        "excluded": index[index.status == "excluded"].groupby("protocol").size()})
    for column in ("has_contours", "has_landmarks", "has_inlinevf", "has_manual_mass", "has_lax_2ch", "has_lax_4ch"):
        out[column.removeprefix("has_").replace("_", " ")] = included.groupby("protocol")[column].sum()
    return out.fillna(0).astype(int)


def geometry_summary(index: pd.DataFrame) -> pd.DataFrame:
    """Acquisition geometry found in the included subjects, per protocol (min-max)."""
    included = index[index.status == "included"]
    columns = {"n_sax_slices": "SAX slices", "n_frames": "frames", "pitch_mm": "slice pitch (mm)",
               "thickness_mm": "slice thickness (mm)", "pixel_row_mm": "row spacing (mm)",
               "pixel_col_mm": "column spacing (mm)"}
    spans = included.groupby("protocol")[list(columns)].agg(
        lambda x: f"{x.min():g}" if x.min() == x.max() else f"{x.min():.3g}-{x.max():.3g}")
    phases = included.groupby("protocol").phase_source.agg(lambda x: ", ".join(f"{k} {v}" for k, v in
                                                                                x.value_counts().items()))
    return spans.rename(columns=columns).assign(**{"ED/ES frames from": phases})


def fault_check(truth: pd.DataFrame, exclusions: pd.DataFrame) -> pd.DataFrame:
    """Each planted fault of a synthetic cohort beside the exclusion data preparation made of it.

    ``found`` is True when the subject is excluded at the expected stage with a reason
    that starts with the expected one.
    """
    planted = truth.loc[truth.fault.fillna("") != "", ["key", "fault", "expected_stage", "expected_reason"]]
    merged = planted.merge(exclusions[["key", "stage", "reason"]], on="key", how="left")
    starts = [isinstance(r, str) and r.startswith(e) for r, e in zip(merged.reason, merged.expected_reason)]
    merged["found"] = (merged.stage == merged.expected_stage) & pd.Series(starts, index=merged.index)
    return merged.set_index("key")


def truth_check(index: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """What ingestion read against what the generator wrote, per protocol: subjects that agree of those compared.

    Compared: SAX slice count, cine frames, slice pitch (thickness + gap, within 0.01 mm),
    pixel spacing (within 1e-6 mm), ED frame (the generator's cycle starts at end-diastole,
    so its ED is frame 0) and ES frame.
    """
    from cmrpipe.synth.protocols import protocol as protocol_spec

    rows = index[index.status == "included"].merge(truth, on=["key", "protocol"], suffixes=("", "_truth"))
    pitch = rows.protocol.map(lambda p: protocol_spec(p).pitch_mm)
    checks = {
        "SAX slices": rows.n_sax_slices == rows.n_sax_slices_truth,
        "cine frames": rows.n_frames == rows.n_frames_truth,
        "slice pitch": (rows.pitch_mm - pitch).abs() < 0.01,
        "pixel spacing": ((rows.pixel_row_mm - rows.pixel_row_mm_truth).abs() < 1e-6)
        & ((rows.pixel_col_mm - rows.pixel_col_mm_truth).abs() < 1e-6),
        "ED frame": rows.ed_frame == 0,
        "ES frame": rows.es_frame == rows.es_frame_truth,
    }
    table = pd.DataFrame({name: ok.groupby(rows.protocol).agg(lambda x: f"{int(x.sum())} / {len(x)}")
                          for name, ok in checks.items()})
    return table


def read_truth(params) -> pd.DataFrame | None:
    """The synthetic cohort's truth table of a run, None for a real cohort."""
    path = params.run_dir / "cohort" / "truth" / "subjects.csv"
    return pd.read_csv(path) if params.cohort_manifest == "synthetic" and path.exists() else None


def shown_file(path: str, image_root: str) -> str:
    """A file of an exclusion as the book shows it: inside the subject's images, never by a name that may identify.

    Folder names and UK Biobank eids can identify people, so the book shows a DICOM file
    relative to the subject's image folder, a bulk zip by its field, a label file by its kind.

    Examples
    --------
    >>> shown_file("mesa/dicom/mesa_0021/SAX/IM_0041.dcm", "mesa/dicom/mesa_0021")
    'SAX/IM_0041.dcm'
    >>> shown_file("ukb/bulk/1000024_20209_2_0.zip/2.25.123.dcm", "ukb/bulk/1000024_20209_2_0.zip")
    'bulk zip, field 20209: an image in it'
    >>> shown_file("labels/contours/ukb_0023.csv", "ukb/bulk/x.zip")
    'contour file'
    """
    from cmrpipe.io.manifest import UKB_ZIP

    if not isinstance(path, str) or not path:
        return ""
    if ".zip" in path:
        zip_name, _, member = path.partition(".zip")
        match = UKB_ZIP.match(zip_name.rsplit("/", 1)[-1] + ".zip")
        what = f"bulk zip, field {match.group(2)}" if match else "zip file"
        return what + (": an image in it" if member.strip("/") else "")
    if path.startswith(image_root.rstrip("/") + "/"):
        return path[len(image_root.rstrip("/")) + 1:]
    for kind in ("contour", "landmark"):
        if kind in path:
            return f"{kind} file"
    return path.rsplit("/", 1)[-1]


def exclusions_shown(exclusions: pd.DataFrame, manifest_path) -> pd.DataFrame:
    """The exclusions table for the book: subject key, stage, reason, and the file as :func:`shown_file` gives it."""
    from cmrpipe.io.manifest import load_manifest

    roots = {s.key: s.image_paths[0] for s in load_manifest(manifest_path).subjects}
    shown = exclusions.assign(file=[shown_file(f, roots.get(k, "")) for k, f in zip(exclusions.key, exclusions.file)])
    return shown.set_index("key")[["protocol", "stage", "file", "reason"]]
