"""SAX segmentation and clinical measures for a run (chapter 03, Paper A section 2.4).

``run(params)`` trains Paper A's U-Net on the core-lab contours of the segmentation
training split (or reuses the model already trained for the same inputs, or a model
named in the parameters), segments every frame of every SAX slice of every included
MESA-look subject the network did not learn from (the test split, the atlas-validation
sub-cohort, the rest of the training sub-cohort), finds ES as the frame of smallest
predicted cavity, measures volumes, mass and EF, and scores it all against the manual
contours and, for a synthetic cohort, the truth.

The network grid. Paper A: "Images were zero-padded and cropped into 256x256 image size as
needed." Each axis is zero-padded or cropped about the image centre to ``image_size_px``,
with no resampling, so the network sees the acquired pixels; predicted labels go back to
the image grid (background where the grid cropped), and Dice and volumes are measured
there. The heart is assumed near the centre of the field of view, as cardiac cine is
planned; at the ``paper`` size of 256 no MESA or UK Biobank matrix is cropped at all.

Measures. Volumes are slice sums (area x pitch, :mod:`cmrpipe.measures`). As Paper A
compares them (Table 4), the automated volumes sum the slices where the manual
endocardial contours exist, at the core lab's ED and ES frames. The fully automated
measures sum every slice with predicted cavity or myocardium, at the labelled ED (or, when
the cohort has no labels, the frame of largest predicted cavity) and the predicted ES.

Quality control. At the core lab's ED and ES, a mid-ventricular contoured slice where the
network predicts no cavity or no myocardium fails the comparison with the manual measures;
at ED and the predicted ES, a slice with no predicted cavity between slices that have one
fails the every-slice measures. A failed subject is listed with the slice, the frame and
what it is left out of, never summed as zero. A subject that cannot be segmented (its store
file unreadable, no height or weight for the body surface area) is listed with its reason;
the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cmrpipe import measures
from cmrpipe.io.labels import CAVITY, MYOCARDIUM
from cmrpipe.io.store import load_subject
from cmrpipe.paths import resolve
from cmrpipe.report.summary import update_summary

log = logging.getLogger("cmrpipe.segment")

PHASES = ("ED", "ES")
PREDICT_VERSION = "1"
"""Change when :func:`predict_stack` gives other labels for the same model and images: every subject is predicted again."""
TRAINING_DATA_VERSION = "2"  # 2: each image normalised over its acquired pixels, then padded with zeros
"""Change when what :func:`training_examples` gives the network changes: the model is then trained again."""
EXCLUSION_COLUMNS = ["key", "stage", "reason", "left_out_of"]
LEFT_OUT = {True: "the automated measures of every slice (vs truth)",
            False: "the comparison with the manual measures (Table 4) and the automated measures of every slice"}
"""What a QC failure leaves a subject out of, by whether its contoured slices passed."""
NO_MODEL = ("none: the segmentation training split has no contoured images, so no U-Net can be trained here; "
            "name a trained model in segmentation_model")
QC_COLUMNS = ["key", "phase", "frame", "slice", "problem"]
DICE_COLUMNS = ["key", "seg_split", "phase", "slice", "dice_cavity", "dice_myocardium"]
MEASURE_NAMES = measures.LV_MEASURE_NAMES
SUMMARY_CORRELATIONS = {"lvedvi": "lvedvi_ml_m2", "lvesvi": "lvesvi_ml_m2", "lvef": "lvef_pct", "lvmi": "lvmi_g_m2"}
"""Paper A Table 4's measures: ``measures.<name>_r`` in the summary is automated vs manual Pearson r."""
MEASURE_COLUMNS = (["key", "seg_split", "ed_frame", "es_frame", "ed_frame_auto", "es_frame_auto", "bsa_m2",
                    "cavity_curve_ml", "qc_pass", "qc_pass_contoured"]
                   + [f"{who}_{name}" for who in ("full", "manual", "auto") for name in MEASURE_NAMES])


@dataclass(frozen=True)
class NetworkGrid:
    """How images of one matrix go onto the square network grid and back (centred zero-padding / cropping).

    Parameters
    ----------
    rows, cols : int
        The image matrix.
    size : int
        The network's input side (``image_size_px``).

    Examples
    --------
    A MESA-like 160 x 256 image on a 128-pixel grid: 64 columns cut off each side, rows 16
    to 144 kept; back on the image grid the cut-off pixels are background.

    >>> g = NetworkGrid(160, 256, 128)
    >>> g.image_window, g.grid_window
    ((slice(16, 144, None), slice(64, 192, None)), (slice(0, 128, None), slice(0, 128, None)))
    >>> g.labels_in(np.ones((1, 160, 256), np.uint8)).shape
    (1, 128, 128)
    >>> g.labels_out(np.ones((1, 128, 128, 3))).shape
    (1, 160, 256)
    """

    rows: int
    cols: int
    size: int

    @staticmethod
    def _windows(n: int, size: int) -> tuple[slice, slice]:
        """(in the image, on the grid): the centred part of an axis of ``n`` pixels that the grid holds."""
        if n >= size:
            start = (n - size) // 2
            return slice(start, start + size), slice(0, size)
        start = (size - n) // 2
        return slice(0, n), slice(start, start + n)

    @property
    def image_window(self) -> tuple[slice, slice]:
        return self._windows(self.rows, self.size)[0], self._windows(self.cols, self.size)[0]

    @property
    def grid_window(self) -> tuple[slice, slice]:
        return self._windows(self.rows, self.size)[1], self._windows(self.cols, self.size)[1]

    def _in(self, stack: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros((len(stack), self.size, self.size), dtype)
        out[(slice(None),) + self.grid_window] = np.asarray(stack)[(slice(None),) + self.image_window]
        return out

    def images_in(self, images: np.ndarray) -> np.ndarray:
        """``(n, rows, cols)`` images to ``(n, size, size)`` float32."""
        return self._in(images, np.float32)

    def labels_in(self, labels: np.ndarray) -> np.ndarray:
        """``(n, rows, cols)`` label maps to ``(n, size, size)`` uint8."""
        return self._in(labels, np.uint8)

    def labels_out(self, probabilities: np.ndarray) -> np.ndarray:
        """``(n, size, size, classes)`` probabilities to ``(n, rows, cols)`` uint8 labels (background outside the grid)."""
        out = np.zeros((len(probabilities), self.rows, self.cols), np.uint8)
        window = np.argmax(np.asarray(probabilities)[(slice(None),) + self.grid_window], axis=-1)
        out[(slice(None),) + self.image_window] = window
        return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks; NaN when both are empty.

    Examples
    --------
    >>> dice(np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool))
    0.6666666666666666
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return float("nan") if total == 0 else float(2.0 * (a & b).sum() / total)


def training_examples(store_dir: Path, keys, size: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Every contoured SAX image (ED and ES) of ``keys``, normalised, then on the network grid.

    Paper A normalises each image (zero mean, unit SD over the acquired pixels), then zero-pads
    and crops it.

    Returns
    -------
    images : (n, size, size) float32
    labels : (n, size, size) uint8
    meta : DataFrame
        key, phase, frame, slice of each example.
    """
    from cmrpipe.models.unet import normalise_images

    images, labels, meta = [], [], []
    for key in keys:
        s = load_subject(store_dir, key)
        if s.contours is None:
            continue
        grid = NetworkGrid(*s.sax_images.shape[2:], size)
        for p, (phase, frame) in enumerate(zip(PHASES, (s.ed_frame, s.es_frame))):
            slices = np.flatnonzero(s.contoured[p])
            if frame < 0 or len(slices) == 0:
                continue
            images.append(grid.images_in(normalise_images(s.sax_images[slices, frame])))
            labels.append(grid.labels_in(s.contours[p, slices]))
            meta += [{"key": key, "phase": phase, "frame": int(frame), "slice": int(i)} for i in slices]
    if not images:
        return np.zeros((0, size, size), np.float32), np.zeros((0, size, size), np.uint8), pd.DataFrame(meta)
    return np.concatenate(images), np.concatenate(labels), pd.DataFrame(meta)


def predict_stack(model, images: np.ndarray, size: int, batch_size: int = 16) -> np.ndarray:
    """Labels of every image of a ``(..., rows, cols)`` stack, on its own grid (the whole predict path).

    Each image is normalised over its acquired pixels, goes onto the network grid (zero padding
    or cropping), and the argmax labels come back to the image grid.
    """
    from cmrpipe.models.train import predict_probabilities
    from cmrpipe.models.unet import normalise_images

    images = np.asarray(images)
    flat = images.reshape((-1,) + images.shape[-2:])
    grid = NetworkGrid(*flat.shape[1:], size)
    labels = np.empty(flat.shape, np.uint8)
    for start in range(0, len(flat), 256):  # bounds memory for long cines
        chunk = grid.images_in(normalise_images(flat[start:start + 256]))
        labels[start:start + 256] = grid.labels_out(predict_probabilities(model, chunk, batch_size))
    return labels.reshape(images.shape)


def cavity_curve_ml(labels: np.ndarray, pixel_spacing_mm, pitch_mm: float) -> np.ndarray:
    """Predicted cavity volume (ml) at each frame of ``(slices, frames, rows, cols)`` labels."""
    return np.array([measures.mask_volume_ml(labels[:, f] == CAVITY, pixel_spacing_mm, pitch_mm)
                     for f in range(labels.shape[1])])


def qc_problems(key: str, labels: np.ndarray, frames: dict[str, int]) -> list[dict]:
    """QC failures of one subject's predicted labels at the measured frames.

    A slice with no predicted cavity between two slices that have one (a hole in the
    ventricle) is a failure; so is a frame with no cavity on any slice.

    Parameters
    ----------
    key : str
    labels : (slices, frames, rows, cols) uint8
    frames : {"ED": frame, "ES": frame}

    Returns
    -------
    list of dict
        Rows with :data:`QC_COLUMNS`; empty when the subject passes.

    Examples
    --------
    >>> lab = np.zeros((4, 1, 3, 3), np.uint8); lab[[0, 1, 3], 0, 1, 1] = CAVITY
    >>> [r["slice"] for r in qc_problems("s1", lab, {"ED": 0})]
    [2]
    """
    out = []
    for phase, frame in frames.items():
        present = (labels[:, frame] == CAVITY).any(axis=(1, 2))
        if not present.any():
            out.append({"key": key, "phase": phase, "frame": int(frame), "slice": -1,
                        "problem": "no cavity predicted on any slice"})
            continue
        first, last = np.flatnonzero(present)[[0, -1]]
        for i in range(first + 1, last):
            if not present[i]:
                out.append({"key": key, "phase": phase, "frame": int(frame), "slice": int(i),
                            "problem": "no cavity predicted on a mid-ventricular slice"})
    return out


def contour_qc_problems(key: str, manual: np.ndarray, auto: np.ndarray, contoured: np.ndarray,
                        frames: tuple[int, int]) -> list[dict]:
    """QC failures against the core lab: a mid-ventricular contoured slice whose cavity or myocardium the network left empty.

    Mid-ventricular: a contoured slice that is not the first or the last contoured slice of its
    phase (the basal and apical end slices, where a small or absent prediction is a
    disagreement that Dice and the volumes report, not a failure).

    Parameters
    ----------
    manual, auto : (2, slices, rows, cols) uint8
        Manual and predicted labels at ED and ES (the prediction on the contoured slices).
    contoured : (2, slices) bool
    frames : (ED frame, ES frame)

    Examples
    --------
    >>> manual = np.zeros((2, 4, 4, 4), np.uint8); manual[:, :, 1:3, 1:3] = CAVITY
    >>> auto = manual.copy(); auto[1, 2] = 0; auto[1, 3] = 0  # slice 3 is the apical end slice
    >>> [(p["phase"], p["slice"]) for p in contour_qc_problems("k", manual, auto, np.ones((2, 4), bool), (0, 5))]
    [('ES', 2)]
    """
    out = []
    for p, phase in enumerate(PHASES):
        for i in np.flatnonzero(contoured[p])[1:-1]:
            for code, name in ((CAVITY, "cavity"), (MYOCARDIUM, "myocardium")):
                if (manual[p, i] == code).any() and not (auto[p, i] == code).any():
                    out.append({"key": key, "phase": phase, "frame": int(frames[p]), "slice": int(i),
                                "problem": f"no {name} predicted on a slice where the core lab drew it"})
    return out


def _measures(prefix: str, ed: np.ndarray, es: np.ndarray, spacing, pitch: float, bsa: float) -> dict:
    values = measures.lv_measures(ed, es, spacing, pitch, bsa, cavity=CAVITY, myocardium=MYOCARDIUM)
    return {f"{prefix}_{name}": value for name, value in values.items()}


def subject_results(key: str, subject, predicted: np.ndarray, bsa_m2: float) -> tuple[dict, list[dict], list[dict]]:
    """Measures, per-image Dice and QC of one segmented subject.

    Returns
    -------
    row : dict
        ``key``, the frames (``ed_frame``, ``es_frame`` labelled; ``es_frame_auto``,
        ``ed_frame_auto`` from the cavity curve), ``manual_*`` (contours), ``auto_*``
        (prediction on the contoured slices at the labelled frames: Paper A's comparison)
        and ``full_*`` (prediction on every slice, labelled ED or largest cavity, predicted
        ES) measures; ``qc_pass`` (no QC failure at all: the ``full_*`` measures stand) and
        ``qc_pass_contoured`` (no failure on the contoured slices: the ``auto_*`` comparison
        with the manual measures stands).
    dice_rows : list of dict
        key, phase, slice, dice_cavity, dice_myocardium for each contoured image.
    qc_rows : list of dict
    """
    spacing, pitch = subject.pixel_spacing_mm, subject.pitch_mm
    curve = cavity_curve_ml(predicted, spacing, pitch)
    es_auto, ed_auto = int(np.argmin(curve)), int(np.argmax(curve))
    ed = subject.ed_frame if subject.ed_frame >= 0 else ed_auto
    row = {"key": key, "ed_frame": subject.ed_frame, "es_frame": subject.es_frame,
           "ed_frame_auto": ed_auto, "es_frame_auto": es_auto, "bsa_m2": bsa_m2,
           "cavity_curve_ml": " ".join(f"{v:.2f}" for v in curve)}
    row.update(_measures("full", predicted[:, ed], predicted[:, es_auto], spacing, pitch, bsa_m2))
    dice_rows = []
    if subject.contours is not None and subject.ed_frame >= 0 and subject.es_frame >= 0:
        manual = subject.contours
        auto = np.stack([np.where(subject.contoured[p][:, None, None], predicted[:, f], 0)
                         for p, f in enumerate((subject.ed_frame, subject.es_frame))])
        row.update(_measures("manual", manual[0], manual[1], spacing, pitch, bsa_m2))
        row.update(_measures("auto", auto[0], auto[1], spacing, pitch, bsa_m2))
        for p, phase in enumerate(PHASES):
            for i in np.flatnonzero(subject.contoured[p]):
                dice_rows.append({"key": key, "phase": phase, "slice": int(i),
                                  "dice_cavity": dice(manual[p, i] == CAVITY, auto[p, i] == CAVITY),
                                  "dice_myocardium": dice(manual[p, i] == MYOCARDIUM, auto[p, i] == MYOCARDIUM)})
    qc_rows = qc_problems(key, predicted, {"ED": ed, "ES (predicted)": es_auto})
    contoured_rows = []
    if subject.contours is not None and subject.ed_frame >= 0 and subject.es_frame >= 0:
        contoured_rows = contour_qc_problems(key, manual, auto, subject.contoured, (subject.ed_frame, subject.es_frame))
    qc_rows += contoured_rows
    row["qc_pass"], row["qc_pass_contoured"] = not qc_rows, not contoured_rows
    return row, dice_rows, qc_rows


@dataclass(frozen=True)
class Segmentation:
    """What chapter 03 produced (each table is also written to ``results/``)."""

    history: pd.DataFrame  # per training epoch; empty when the model was reused from elsewhere
    n_training_images: dict  # split -> contoured images
    model_source: str  # "trained", "reused", the path of the given model, or NO_MODEL
    dice: pd.DataFrame  # per contoured image of the test split
    measures: pd.DataFrame  # per segmented subject
    qc: pd.DataFrame  # QC_COLUMNS
    exclusions: pd.DataFrame  # EXCLUSION_COLUMNS
    truth: pd.DataFrame | None  # the synthetic cohort's truth for the segmented subjects


def split_keys(index: pd.DataFrame) -> dict[str, list[str]]:
    """Keys per role: ``train`` / ``validation`` / ``test`` (Paper A's segmentation split) and ``segment``.

    ``segment`` is every included MESA-protocol subject the network did not learn from (the
    test split, the atlas-validation sub-cohort, the rest of the training sub-cohort).
    """
    rows = index[(index.status == "included") & (index.protocol == "mesa")]
    split = rows.seg_split.fillna("").astype(str)
    keys = {name: rows.key[split == name].astype(str).tolist() for name in ("train", "validation", "test")}
    keys["segment"] = rows.key[~split.isin(["train", "validation"])].astype(str).tolist()
    return keys


def model_fingerprint(params, index: pd.DataFrame, keys: dict[str, list[str]]) -> str:
    """What the trained model depends on: its parameters, its training subjects' inputs, the model code."""
    code = hashlib.sha256(TRAINING_DATA_VERSION.encode())
    for path in sorted((Path(__file__).parent / "models").glob("*.py")):
        code.update(path.read_bytes())
    digests = index.set_index("key")["inputs_sha256"].astype(str)
    spec = {"image_size_px": params.image_size_px, "unet_base_filters": params.unet_base_filters,
            "segmentation_epochs": params.segmentation_epochs, "segmentation_optimizer": params.segmentation_optimizer,
            "segmentation_batch_size": params.segmentation_batch_size, "seed": params.seed,
            "train": {k: digests[k] for k in keys["train"]}, "validation": {k: digests[k] for k in keys["validation"]},
            "code": code.hexdigest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _model(params, store_dir: Path, index: pd.DataFrame, keys: dict, out_dir: Path, progress: bool = True):
    """The run's U-Net: the one named in the parameters, the one trained before for the same inputs, or a new one."""
    from cmrpipe.models import train as training

    size = params.image_size_px
    counts = {}
    if params.segmentation_model:
        path = resolve(params.segmentation_model)
        if not path.is_file():
            raise FileNotFoundError(f"segmentation_model {path} not found; leave it empty to train in this run")
        return training.load_model(path), pd.DataFrame(), counts, str(params.segmentation_model), \
            hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    fingerprint = model_fingerprint(params, index, keys)
    model_path, stamp = out_dir / "unet.keras", out_dir / "unet.json"
    history_path = out_dir / "history.csv"
    if model_path.is_file() and stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint:
        info = json.loads(stamp.read_text())
        return training.load_model(model_path), pd.read_csv(history_path), info["n_images"], "reused", fingerprint
    train_x, train_y, _ = training_examples(store_dir, keys["train"], size)
    val_x, val_y, _ = training_examples(store_dir, keys["validation"], size)
    counts = {"train": len(train_x), "validation": len(val_x)}
    if len(train_x) == 0:
        return None, pd.DataFrame(), counts, NO_MODEL, ""
    model, history = training.fit_unet((train_x, train_y), (val_x, val_y) if len(val_x) else None,
                                       base_filters=params.unet_base_filters, epochs=params.segmentation_epochs,
                                       batch_size=params.segmentation_batch_size, seed=params.seed,
                                       optimizer=params.segmentation_optimizer, progress=progress)
    training.save_model(model, model_path)
    history.to_csv(history_path, index=False)
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "n_images": counts}, indent=1) + "\n")
    return model, history, counts, "trained", fingerprint


def body_surface_area_m2(covariates: pd.DataFrame, key: str) -> float:
    """DuBois body surface area of a subject from ``covariates.csv`` (indexed by key): height and weight.

    Raises
    ------
    ValueError
        When the subject's height or weight is missing (the reason names what is missing).
    """
    row = covariates.loc[key] if key in covariates.index else pd.Series(dtype=float)
    values = {name: pd.to_numeric(row.get(name), errors="coerce") for name in ("height_cm", "weight_kg")}
    missing = [name for name, value in values.items() if not np.isfinite(value)]
    if missing:
        raise ValueError(f"no {' or '.join(missing)} in covariates.csv: LV measures cannot be indexed by body surface area")
    return float(measures.dubois_bsa_m2(values["weight_kg"], values["height_cm"]))


def load_masks(masks_dir: Path, key: str) -> np.ndarray:
    """A segmented subject's predicted labels, ``(slices, frames, rows, cols)`` uint8, from ``masks_dir``."""
    with h5py.File(Path(masks_dir) / f"{key}.h5", "r") as h5:
        return h5["labels"][:]


def masks_fingerprint(model_fingerprint: str, inputs_sha256: str, size: int) -> str:
    """What a subject's predicted masks depend on: the model, the subject's inputs, the grid, the predict code."""
    spec = [PREDICT_VERSION, model_fingerprint, str(inputs_sha256), int(size)]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _masks(model, subject, size: int, batch_size: int, path: Path, fingerprint: str) -> np.ndarray:
    """A subject's predicted labels, ``(slices, frames, rows, cols)``: read back if made for ``fingerprint``
    (:func:`masks_fingerprint`), else predicted and written (HDF5, and NIfTI images and labels)."""
    from cmrpipe.io.nifti import write_nifti

    nifti = path.parent.parent / "nifti"
    if path.is_file():
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("fingerprint") == fingerprint:
                return h5["labels"][:]
    labels = predict_stack(model, subject.sax_images, size, batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with h5py.File(tmp, "w") as h5:
        h5.attrs["fingerprint"] = fingerprint
        h5.attrs["key"] = subject.key
        h5.create_dataset("labels", data=labels, compression="lzf", chunks=(1, 1) + labels.shape[2:])
        h5["labels"].attrs["affine_ijk_to_lps"] = subject.sax_affine_ijk_to_lps
        h5["labels"].attrs["axes"] = "slice, frame, row, col"
    # the NIfTI files are written before the masks file is complete: its presence implies theirs
    for name, data in (("sax", subject.sax_images), ("sax_labels", labels)):
        write_nifti(nifti / f"{subject.key}_{name}.nii.gz", data.transpose(2, 3, 0, 1), subject.sax_affine_ijk_to_lps,
                    frame_interval_ms=subject.frame_interval_ms)
    tmp.replace(path)
    return labels


def run(params, progress: bool = True) -> Segmentation:
    """Train (or reuse) the U-Net, segment and measure the run's subjects, and write the tables.

    Writes ``<run_dir>/segmentation/`` (the model, its history, ``masks/<key>.h5`` and
    ``nifti/<key>_sax[_labels].nii.gz``), ``results/seg_*.csv`` and the ``seg.*`` and
    ``measures.*`` keys of ``results/summary.json``.
    """
    from tqdm.auto import tqdm

    store_dir = params.run_dir / "store"
    out_dir = params.run_dir / "segmentation"
    out_dir.mkdir(parents=True, exist_ok=True)
    index = pd.read_csv(store_dir / "index.csv", dtype={"key": str})
    covariates = pd.read_csv(store_dir / "covariates.csv", dtype={"key": str}).set_index("key")
    keys = split_keys(index)
    digests = index.set_index("key")["inputs_sha256"].astype(str).to_dict()
    model, history, counts, source, fingerprint = _model(params, store_dir, index, keys, out_dir, progress)
    test = set(keys["test"])
    rows, dice_rows, qc_rows, excluded = [], [], [], []
    if model is None:
        log.warning("no segmentation model: %s", NO_MODEL)
    for key in tqdm(keys["segment"] if model is not None else [], desc="segmenting", unit="subject", disable=not progress):
        try:
            subject = load_subject(store_dir, key)
            bsa = body_surface_area_m2(covariates, key)
            predicted = _masks(model, subject, params.image_size_px, params.segmentation_batch_size,
                               out_dir / "masks" / f"{key}.h5",
                               masks_fingerprint(fingerprint, digests.get(key, ""), params.image_size_px))
        except (OSError, ValueError, KeyError) as error:
            log.warning("%s: cannot be segmented: %s", key, error)
            excluded.append({"key": key, "stage": "segmentation", "reason": str(error), "left_out_of": "everything"})
            continue
        row, dice_subject, qc_subject = subject_results(key, subject, predicted, bsa)
        row["seg_split"] = "test" if key in test else ""
        rows.append(row)
        qc_rows += qc_subject
        dice_rows += [{**d, "seg_split": row["seg_split"]} for d in dice_subject]
        if qc_subject:
            excluded.append({"key": key, "stage": "segmentation QC",
                             "reason": "; ".join(f"{q['problem']} ({q['phase']} frame {q['frame']}, slice {q['slice']})"
                                                 for q in qc_subject),
                             "left_out_of": LEFT_OUT[bool(row["qc_pass_contoured"])]})
    result = Segmentation(history=history, n_training_images=counts, model_source=source,
                          dice=pd.DataFrame(dice_rows, columns=DICE_COLUMNS),
                          measures=pd.DataFrame(rows, columns=MEASURE_COLUMNS), qc=pd.DataFrame(qc_rows, columns=QC_COLUMNS),
                          exclusions=pd.DataFrame(excluded, columns=EXCLUSION_COLUMNS),
                          truth=_truth(params, [r["key"] for r in rows]))
    _write(params, result)
    return result


def _truth(params, keys: list[str]) -> pd.DataFrame | None:
    path = params.run_dir / "cohort" / "truth" / "subjects.csv"
    if params.cohort_manifest != "synthetic" or not path.is_file():
        return None
    truth = pd.read_csv(path, dtype={"key": str})
    return truth[truth.key.isin(keys)].reset_index(drop=True)


def _write(params, result: Segmentation) -> None:
    results = params.run_dir / "results"
    results.mkdir(parents=True, exist_ok=True)
    for name, table in (("seg_dice", result.dice), ("seg_measures", result.measures), ("seg_qc", result.qc),
                        ("seg_exclusions", result.exclusions)):
        table.to_csv(results / f"{name}.csv", index=False)
    update_summary(params.run_dir, summary_values(result))


def table4_subjects(measures: pd.DataFrame, test_only: bool = True) -> pd.DataFrame:
    """The subjects of an automated vs manual comparison, with no QC failure on their contoured slices.

    ``test_only``: Paper A's Table 4 subjects, the segmentation test split. Otherwise every
    segmented subject with manual contours: all are held out from training (the test split,
    the atlas-validation sub-cohort), a larger sample of the same comparison.
    """
    chosen = measures.seg_split == "test" if test_only else measures.manual_lvedv_ml.notna()
    return measures[chosen & measures.qc_pass_contoured.astype(bool)]


def dice_images(dice: pd.DataFrame, test_only: bool = True) -> pd.DataFrame:
    """The Dice rows of Table 3: the test split's images, or every held-out contoured image."""
    return dice[dice.seg_split == "test"] if test_only else dice


def summary_values(result: Segmentation) -> dict:
    """The chapter's ``summary.json`` keys (NaN where there is nothing to compute).

    ``seg.dice_*`` and ``measures.*_r`` cover every held-out subject with contours (the test
    split and the atlas-validation sub-cohort); the same keys ending ``_test`` cover Paper A's
    test split alone. The truth errors cover every segmented subject that passed QC.
    """
    from cmrpipe.stats.agreement import mae, pearson

    m = result.measures
    passed = m[m.qc_pass.astype(bool)]
    values = {"seg.n_segmented": int(len(m)), "seg.n_qc_fail": int((~m.qc_pass.astype(bool)).sum())}
    for suffix, test_only in (("", False), ("_test", True)):  # every held-out subject; the test split alone
        dice, tested = dice_images(result.dice, test_only), table4_subjects(m, test_only)
        values.update({f"seg.dice_myo_mean{suffix}": float(dice.dice_myocardium.mean()),
                       f"seg.dice_cavity_mean{suffix}": float(dice.dice_cavity.mean()),
                       f"seg.n_images{suffix}": int(len(dice)), f"measures.n_subjects{suffix}": int(len(tested))})
        for name, column in SUMMARY_CORRELATIONS.items():
            values[f"measures.{name}_r{suffix}"] = pearson(tested[f"auto_{column}"], tested[f"manual_{column}"])["r"]
    truth = result.truth
    if truth is not None and len(passed):
        both = passed.merge(truth[["key", "lvedv_ml", "lvmi_g_m2"]], on="key", suffixes=("", "_truth"))
        values["measures.lvmi_mae_vs_truth_g_m2"] = mae(both.full_lvmi_g_m2, both.lvmi_g_m2)
        values["measures.lvedv_mae_vs_truth_ml"] = mae(both.full_lvedv_ml, both.lvedv_ml)
    else:
        values["measures.lvmi_mae_vs_truth_g_m2"] = values["measures.lvedv_mae_vs_truth_ml"] = float("nan")
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in values.items()}
