"""Seeded, per-subject data splits of both papers' cohorts.

Every subject's split comes from its own uniform draw, a hash of (seed, purpose, key),
compared with the cumulative fractions the papers give. So the same seed gives the same
splits, the row order does not matter, and a subject keeps its split when other subjects
are added or removed. One exception keeps small cohorts usable: when a group has at
least :data:`MIN_ELIGIBLE` subjects, every split of that group gets at least
:data:`MIN_PER_SPLIT` of them (Paper A's 50/2,379 landmark test exams round to none in a
few dozen subjects). The top-up moves the donor subjects whose draws lie nearest the
short split's interval, so only those few subjects depend on who else is in the cohort;
on a cohort large enough for every split to reach the minimum by itself, no top-up
happens and every split is exactly stable.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

# Each dict runs along the unit interval in order: the first split takes the lowest draws.

# Paper A, 2.1 Dataset: "Of the 5,003 cases, 2,529 (50.5%) ... (Training sub-cohort). The
# remaining 2,474 cases (49.5%) ... (Atlas Validation sub-cohort)"; Figure 2 caption.
PAPER_A_SUBCOHORT = {"training": 2529 / 5003, "atlas_validation": 2474 / 5003}
# Paper A, 2.3 Landmark Detection: "Of the 2,379 exams, 50 were randomly selected for the test
# dataset ... The division was 2,097 (90%) cases for training and 232 (10%) cases for validation".
PAPER_A_LANDMARK = {"test": 50 / 2379, "validation": 232 / 2379, "train": 2097 / 2379}
# Paper A, 2.4 Segmentation: "The 1,545 exams were randomly split into 80% training cases ...,
# 10% validation cases ... and 10% test cases".
PAPER_A_SEG = {"test": 0.10, "validation": 0.10, "train": 0.80}
# Paper B, Methods: "the training set of 3178 after excluding testing and validation samples
# from the total 5065 CMR images with LV mass values"; Results: "holdout set of 891 individuals
# with manually labeled LV mass"; validation = 5,065 - 3,178 - 891 = 996.
PAPER_B_MASS = {"holdout": 891 / 5065, "validation": 996 / 5065, "train": 3178 / 5065}
# Paper B, Table 1: "Training set (N = 33,071)", "Holdout set (N = 5393)" (38,464 in all, the
# Figure 2 sample). Less the manual-mass subjects (3,178 + 996 in training, 891 in holdout):
# 28,897 training and 4,502 holdout of the 33,399 without manual LV mass.
PAPER_B_NO_MASS = {"holdout": 4502 / 33399, "train": 28897 / 33399}

MIN_ELIGIBLE = 10  # groups at least this large get ...
MIN_PER_SPLIT = 2  # ... at least this many subjects in every split

SPLIT_COLUMNS = ("subcohort", "landmark_split", "seg_split", "mass_split", "cohort_split")
REQUIRED_COLUMNS = ("key", "protocol", "status", "has_contours", "has_landmarks", "has_manual_mass",
                    "has_inlinevf")
SPLIT_ORDER = ("training", "atlas_validation", "train", "validation", "test", "holdout")


def subject_draws(keys, seed: int, purpose: str) -> np.ndarray:
    """One uniform draw in [0, 1) per subject, from a hash of (seed, purpose, key).

    Parameters
    ----------
    keys : (n,) sequence of str
        Subject keys.
    seed : int
    purpose : str
        Which split the draws are for, so that different splits draw independently.

    Returns
    -------
    (n,) float array

    Examples
    --------
    >>> a = subject_draws(["mesa_0001", "mesa_0002"], 0, "seg")
    >>> bool(np.all((0 <= a) & (a < 1))), bool(subject_draws(["mesa_0002"], 0, "seg")[0] == a[1])
    (True, True)
    """
    digests = (hashlib.blake2b(f"{int(seed)}|{purpose}|{key}".encode(), digest_size=8).digest()
               for key in keys)
    return np.fromiter((int.from_bytes(d, "big") / 2.0**64 for d in digests), float, count=len(keys))


def allocate(draws, fractions: dict[str, float], min_eligible: int = MIN_ELIGIBLE,
             min_per_split: int = MIN_PER_SPLIT) -> np.ndarray:
    """Split names for uniform draws, by cumulative fractions, with a minimum count per split.

    Parameters
    ----------
    draws : (n,) float array
        Uniform draws in [0, 1), one per subject.
    fractions : dict
        Split name -> fraction, in the order the splits run along [0, 1); normalised to sum 1.
    min_eligible, min_per_split : int
        When ``n >= min_eligible``, a split with fewer than ``min_per_split`` subjects takes
        them, one at a time, from the largest split: the donor subject whose draw lies nearest
        the short split's interval.

    Returns
    -------
    (n,) object array of str

    Examples
    --------
    >>> allocate([0.05, 0.5, 0.95], {"test": 0.1, "train": 0.9}).tolist()
    ['test', 'train', 'train']
    >>> draws = np.linspace(0.2, 0.9, 10)  # none below 0.1, yet 2 test subjects
    >>> allocate(draws, {"test": 0.1, "train": 0.9}).tolist().count("test")
    2
    """
    draws = np.asarray(draws, dtype=float)
    names = list(fractions)
    upper = np.cumsum([float(fractions[name]) for name in names])
    upper = upper / upper[-1]
    lower = np.concatenate([[0.0], upper[:-1]])
    which = np.minimum(np.searchsorted(upper, draws, side="right"), len(names) - 1)
    if len(draws) >= min_eligible:
        for j in range(len(names)):
            while np.count_nonzero(which == j) < min_per_split:
                counts = np.bincount(which, minlength=len(names))
                donor = int(np.argmax(counts))
                if donor == j or counts[donor] <= min_per_split:
                    break
                members = np.flatnonzero(which == donor)
                gap = np.maximum(lower[j] - draws[members], draws[members] - upper[j])
                which[members[np.lexsort((draws[members], gap))[0]]] = j
    return np.array(names, dtype=object)[which]


def assign_splits(index: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The subject index with the two papers' split columns added.

    Only subjects with ``status == "included"`` are split; every other cell is ``""``.

    - ``subcohort`` (MESA): ``training`` / ``atlas_validation`` (Paper A 2.1: 2,529 / 2,474
      of 5,003).
    - ``landmark_split`` (MESA training sub-cohort, ``has_landmarks == 1``): ``test`` /
      ``validation`` / ``train`` as 50 / 232 / 2,097 of 2,379 (Paper A 2.3; the test exams
      are the ones both observers annotated).
    - ``seg_split``, MESA (training sub-cohort, ``has_contours == 1``): ``train`` /
      ``validation`` / ``test`` as 80 / 10 / 10 % (Paper A 2.4). UK Biobank
      (``has_inlinevf == 1``): the subject's ``cohort_split``; ML4H_seg trains on the
      InlineVF contours of the Table 1 training set.
    - ``mass_split`` (UK Biobank, ``has_manual_mass == 1``): ``train`` / ``validation`` /
      ``holdout`` as 3,178 / 996 / 891 of 5,065 (Paper B Methods and Results).
    - ``cohort_split`` (UK Biobank): ``train`` / ``holdout``, Paper B Table 1 (33,071 /
      5,393). Our reading: the 891 manual-mass holdout subjects are part of the 5,393, and
      the 996 validation subjects, used during training, are part of the 33,071; so a
      manual-mass subject's ``cohort_split`` follows its ``mass_split`` (validation ->
      train), and the others are split 28,897 / 4,502 (of 33,399), which brings the whole
      cohort back to 33,071 : 5,393.

    Groups of at least :data:`MIN_ELIGIBLE` subjects get at least :data:`MIN_PER_SPLIT`
    in every split (see :func:`allocate`).

    Parameters
    ----------
    index : DataFrame
        One row per subject, with at least :data:`REQUIRED_COLUMNS`; ``has_*`` are 0/1.
    seed : int

    Returns
    -------
    DataFrame
        A copy of ``index`` with :data:`SPLIT_COLUMNS` added (or replaced).

    Raises
    ------
    ValueError
        If a required column is missing or a key appears twice.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(f"subject index lacks column(s) {missing}")
    doubled = index["key"][index["key"].duplicated()].astype(str).unique().tolist()
    if doubled:
        raise ValueError(f"subject index lists key(s) {doubled[:5]} more than once")
    out = index.copy()
    for column in SPLIT_COLUMNS:
        out[column] = pd.Series("", index=out.index, dtype=object)
    keys = out["key"].astype(str).to_numpy()
    protocol = out["protocol"].astype(str).str.lower().to_numpy()
    included = out["status"].astype(str).str.lower().eq("included").to_numpy()

    def has(column: str) -> np.ndarray:
        return pd.to_numeric(out[column], errors="coerce").fillna(0).to_numpy() == 1

    def fill(column: str, rows: np.ndarray, fractions: dict[str, float], purpose: str) -> None:
        where = np.flatnonzero(rows)
        if len(where):
            out.iloc[where, out.columns.get_loc(column)] = allocate(
                subject_draws(keys[where], seed, purpose), fractions)

    mesa = included & (protocol == "mesa")
    fill("subcohort", mesa, PAPER_A_SUBCOHORT, "subcohort")
    training = out["subcohort"].to_numpy() == "training"
    fill("landmark_split", training & has("has_landmarks"), PAPER_A_LANDMARK, "landmark")
    fill("seg_split", training & has("has_contours"), PAPER_A_SEG, "seg")

    ukb = included & (protocol == "ukb")
    mass = ukb & has("has_manual_mass")
    fill("mass_split", mass, PAPER_B_MASS, "mass")
    fill("cohort_split", ukb & ~mass, PAPER_B_NO_MASS, "cohort")
    out.loc[mass, "cohort_split"] = np.where(out.loc[mass, "mass_split"] == "holdout", "holdout", "train")
    inlinevf = ukb & has("has_inlinevf")
    out.loc[inlinevf, "seg_split"] = out.loc[inlinevf, "cohort_split"]
    return out


def split_summary(index: pd.DataFrame) -> pd.DataFrame:
    """Counts of subjects per protocol, split column and split.

    Parameters
    ----------
    index : DataFrame
        From :func:`assign_splits` (empty cells may be ``""`` or NaN, as read back from CSV).

    Returns
    -------
    DataFrame
        Columns ``protocol``, ``split_column``, ``split``, ``n_subjects`` and ``share_pct``
        (percent of the subjects that column splits within the protocol).

    Examples
    --------
    >>> index = pd.DataFrame({"protocol": ["ukb"] * 3, "mass_split": ["train", "holdout", "train"]})
    >>> split_summary(index).round(1)
      protocol split_column    split  n_subjects  share_pct
    0      ukb   mass_split    train           2       66.7
    1      ukb   mass_split  holdout           1       33.3
    """
    dtypes = {"protocol": object, "split_column": object, "split": object, "n_subjects": int,
              "share_pct": float}
    columns = list(dtypes)
    parts = []
    for column in SPLIT_COLUMNS:
        if column not in index.columns:
            continue
        values = index[column].fillna("").astype(str)
        chosen = index.loc[values != "", "protocol"].to_frame().assign(split=values[values != ""])
        counts = chosen.groupby(["protocol", "split"]).size().rename("n_subjects").reset_index()
        counts.insert(1, "split_column", column)
        parts.append(counts)
    if not parts or all(p.empty for p in parts):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    table = pd.concat([p for p in parts if not p.empty], ignore_index=True)
    totals = table.groupby(["protocol", "split_column"])["n_subjects"].transform("sum")
    table["share_pct"] = 100.0 * table["n_subjects"] / totals
    rank = {name: i for i, name in enumerate(SPLIT_ORDER)}
    table["_c"] = table["split_column"].map({c: i for i, c in enumerate(SPLIT_COLUMNS)})
    table["_s"] = table["split"].map(rank).fillna(len(rank))
    return table.sort_values(["protocol", "_c", "_s"]).drop(columns=["_c", "_s"]).reset_index(drop=True)[columns]
