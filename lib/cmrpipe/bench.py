"""Benchmarks (``make bench``): speed targets live here, never in timed tests.

Each benchmark returns a flat dict of numbers. Where there is a baseline (the bare
library call that our code wraps) it is timed in the same process, on the same
input, interleaved with ours, and the result is reported as a ratio, because the
machines are shared and noisy. Results go to one JSON file with the machine's
description, e.g. ``python -m cmrpipe.bench --out bench/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from cmrpipe.paths import BOOK_DIR, NOTEBOOKS_DIR, PARAMS_DIR
from cmrpipe.workers import n_cores


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _params_file(folder: Path) -> Path:
    data = yaml.safe_load((PARAMS_DIR / "smoke.yaml").read_text())
    data["runs_dir"] = str(folder / "runs")
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def bench_runner(repeats: int = 5) -> dict[str, float]:
    """The runner's cost over bare papermill, on a one-cell chapter, same process.

    ``runner_over_papermill`` is the median time of ``run_chapters(force=True)``
    divided by that of ``papermill.execute_notebook`` on the same notebook (goal:
    close to 1; the difference is hashing, stamps, logs and the book copy).
    ``skip_check_s`` is the time to decide that an unchanged chapter is up to date.
    """
    import nbformat
    import papermill

    from cmrpipe.runner import KERNEL_NAME, run_chapters

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = nbformat.v4.new_notebook()
        params_cell = nbformat.v4.new_code_cell('profile = "default"')
        params_cell.metadata["tags"] = ["parameters"]
        nb.cells = [params_cell, nbformat.v4.new_code_cell("x = sum(range(1000))")]
        chapters = tmp / "notebooks"
        chapters.mkdir()
        nbformat.write(nb, chapters / "00_trivial.ipynb")
        params_path = _params_file(tmp)
        parameters = yaml.safe_load(params_path.read_text())

        logging.getLogger("papermill").setLevel(logging.ERROR)  # the baseline's unknown-parameter warnings
        bare, ours = [], []
        for _ in range(repeats):
            bare.append(_timed(lambda: papermill.execute_notebook(
                str(chapters / "00_trivial.ipynb"), str(tmp / "bare.ipynb"), parameters=parameters,
                kernel_name=KERNEL_NAME, language="python", cwd=str(tmp), progress_bar=False)))
            ours.append(_timed(lambda: run_chapters(params_path, force=True, notebooks_dir=chapters,
                                                     book_dir=tmp / "book", progress=False)))
        skips = [_timed(lambda: run_chapters(params_path, notebooks_dir=chapters, book_dir=tmp / "book",
                                             progress=False)) for _ in range(repeats)]
    return {
        "papermill_bare_s": statistics.median(bare),
        "runner_s": statistics.median(ours),
        "runner_over_papermill": statistics.median(ours) / statistics.median(bare),
        "skip_check_s": statistics.median(skips),
    }


def bench_published() -> dict[str, float]:
    """Loading and rendering the published values (chapter 00's work)."""
    from cmrpipe.report import papers, published

    published._printed_records.cache_clear()
    published._records.cache_clear()
    load_s = _timed(published.load)
    render_s = _timed(lambda: [papers.show_table(p, t).to_html() for p in "AB" for t in published.tables(p)])
    return {"n_records": float(len(published.load())), "load_s": load_s, "render_all_tables_s": render_s}


def bench_book() -> dict[str, float]:
    """Executing chapter 00 and building the HTML book from scratch."""
    from cmrpipe.book import build_book
    from cmrpipe.runner import run_chapters

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        book = tmp / "book"
        book.mkdir()
        shutil.copy(BOOK_DIR / "intro.md", book / "intro.md")
        params_path = _params_file(tmp)
        run_s = _timed(lambda: run_chapters(params_path, notebooks_dir=NOTEBOOKS_DIR, book_dir=book,
                                            progress=False))
        build_s = _timed(lambda: build_book(book))
    return {"run_all_chapters_smoke_s": run_s, "book_build_s": build_s}


def bench_synth(n_subjects: int = 2) -> dict[str, float]:
    """Synthetic subjects generated per second, per protocol and preset, in one process.

    Also the disk size of a subject, to size cohorts: ``<preset>_<protocol>_mb_per_subject``.
    """
    from cmrpipe.synth.cohort import config_for, write_subject

    out = {}
    for preset in ("smoke", "default"):
        config = config_for(preset, seed=1, n_subjects=n_subjects, faults=False)
        for protocol in config.protocols:
            with tempfile.TemporaryDirectory() as tmp:
                seconds = _timed(lambda: [write_subject(config, protocol, i, Path(tmp)) for i in range(n_subjects)])
                size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
            out[f"{preset}_{protocol}_subjects_per_s"] = n_subjects / seconds
            out[f"{preset}_{protocol}_mb_per_subject"] = size / n_subjects / 1e6
    return out


def bench_synth_pool(n_subjects: int = 2) -> dict[str, float]:
    """The worker pool's speed-up: one smoke cohort (``n_subjects`` per protocol) made by one process, then
    by one worker per core, in that order (``smoke_pool_speedup``, serial time over pooled; the
    ideal is ``cores``). Nothing to measure on one core."""
    from cmrpipe.synth.cohort import config_for, generate_cohort

    cores = n_cores()
    if cores < 2:
        return {"cores": cores}
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in (("serial", 1), ("pooled", cores)):
            config = config_for("smoke", seed=1, n_subjects=n_subjects, faults=False, workers=workers)
            seconds[name] = _timed(lambda: generate_cohort(config, Path(tmp) / name, progress=False))
    return {"cores": cores, "smoke_cohort_serial_s": seconds["serial"], "smoke_cohort_pooled_s": seconds["pooled"],
            "smoke_pool_speedup": seconds["serial"] / seconds["pooled"]}


def _bare_read(cohort: Path) -> int:
    """The baseline: ``pydicom.dcmread`` and pixel decode of every DICOM file of a cohort (zips included)."""
    import io
    import zipfile

    import pydicom

    n = 0
    for path in sorted(cohort.rglob("*")):
        if path.suffix == ".dcm":
            pydicom.dcmread(path).pixel_array
            n += 1
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    if name.endswith(".dcm"):
                        pydicom.dcmread(io.BytesIO(z.read(name))).pixel_array
                        n += 1
    return n


def _mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _subset_manifest(manifest: Path, n_per_protocol: int) -> Path:
    document = yaml.safe_load(manifest.read_text())
    kept, counts = [], {}
    for subject in document["subjects"]:
        counts[subject["protocol"]] = counts.get(subject["protocol"], 0) + 1
        if counts[subject["protocol"]] <= n_per_protocol:
            kept.append(subject)
    path = manifest.with_name(f"manifest_{n_per_protocol}.yaml")
    path.write_text(yaml.safe_dump({**document, "subjects": kept}, sort_keys=False))
    return path


def bench_ingest(n_subjects: int = 8, repeats: int = 3) -> dict[str, float]:
    """Data preparation's throughput against bare pydicom, and its cost at three cohort sizes.

    ``ingest_over_bare_read`` is the throughput of ``ingest_cohort`` (one process:
    checksums, views, geometry, overlays, labels, HDF5 with the default lzf compression)
    divided by that of bare ``pydicom.dcmread`` + pixel decode of the same files,
    interleaved in one process (goal >= 0.8); ``ingest_raw_over_bare_read`` the same
    with an uncompressed store. ``ingest_s_<n>`` is the time for n subjects per protocol (n, 2n, 4n
    over 4): a linear cost gives equal ``ingest_s_per_subject_<n>``.
    """
    from cmrpipe.io.store import ingest_cohort
    from cmrpipe.synth.cohort import config_for, generate_cohort

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = config_for("default", seed=2, n_subjects=n_subjects, faults=False, workers=n_cores())
        generate_cohort(config, tmp / "cohort", progress=False)
        manifest = tmp / "cohort" / "manifest.yaml"
        bare, ours, raw = [], [], []
        for r in range(repeats):
            start = time.perf_counter()
            n_files = _bare_read(tmp / "cohort")
            bare.append(time.perf_counter() - start)
            ours.append(_timed(lambda: ingest_cohort(manifest, tmp / f"store_{r}", workers=1, progress=False)))
            raw.append(_timed(lambda: ingest_cohort(manifest, tmp / f"raw_{r}", workers=1, progress=False,
                                                    compression=None)))
            out["store_mb_per_subject"] = _mb(tmp / f"store_{r}") / (2 * n_subjects)
            out["raw_store_mb_per_subject"] = _mb(tmp / f"raw_{r}") / (2 * n_subjects)
            shutil.rmtree(tmp / f"store_{r}")
            shutil.rmtree(tmp / f"raw_{r}")
        out["files"] = n_files
        out["bare_read_files_per_s"] = n_files / statistics.median(bare)
        out["ingest_subjects_per_s"] = 2 * n_subjects / statistics.median(ours)
        out["ingest_over_bare_read"] = statistics.median(bare) / statistics.median(ours)
        out["ingest_raw_over_bare_read"] = statistics.median(bare) / statistics.median(raw)
        for n in (n_subjects // 4, n_subjects // 2, n_subjects):
            seconds = _timed(lambda: ingest_cohort(_subset_manifest(manifest, n), tmp / f"store_n{n}", workers=1,
                                                   progress=False))
            out[f"ingest_s_{2 * n}_subjects"] = seconds
            out[f"ingest_s_per_subject_{2 * n}"] = seconds / (2 * n)
    return out


def bench_segment(repeats: int = 5, slices: int = 10, frames: int = 20) -> dict[str, float]:
    """Chapter 03's speeds with the ``default`` profile's U-Net (16 base filters, 128 px), untrained.

    ``predict_path_over_bare_predict``: images per second of the whole predict path
    (:func:`cmrpipe.segment.predict_stack`: grid, normalisation, prediction, labels back on the
    image grid) on one MESA-like cine stack (``slices x frames`` images of 160 x 256), divided by
    bare ``model.predict`` on the same images already on the grid, interleaved (goal >= 0.9).
    ``train_images_per_s``: augmented training, second epoch. ``measures_s_per_subject``: Dice,
    measures and QC of one segmented subject (:func:`cmrpipe.segment.subject_results`).
    """
    import numpy as np

    from cmrpipe import segment
    from cmrpipe.io.store import StoredSubject
    from cmrpipe.models import train
    from cmrpipe.models.unet import build_unet, normalise_images

    params = yaml.safe_load((PARAMS_DIR / "default.yaml").read_text())
    size, width = params["image_size_px"], params["unet_base_filters"]
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 400, (slices, frames, 160, 256)).astype(np.int16)
    model = build_unet(base_filters=width, input_shape=(size, size, 1))
    grid = segment.NetworkGrid(160, 256, size)
    ready = grid.images_in(normalise_images(stack.reshape(-1, 160, 256)))[..., None]
    batch = params["segmentation_batch_size"]
    model.predict(ready, batch_size=batch, verbose=0)  # warm-up: tracing every batch shape is not throughput
    segment.predict_stack(model, stack, size, batch)
    bare, ours = [], []
    for r in range(repeats):  # interleaved, alternating which goes first
        pair = [lambda: bare.append(_timed(lambda: model.predict(ready, batch_size=batch, verbose=0))),
                lambda: ours.append(_timed(lambda: segment.predict_stack(model, stack, size, batch)))]
        for run in pair[::1 if r % 2 == 0 else -1]:
            run()
    n = slices * frames
    out = {"images": n, "bare_predict_images_per_s": n / statistics.median(bare),
           "predict_path_images_per_s": n / statistics.median(ours),
           "predict_path_over_bare_predict": statistics.median(bare) / statistics.median(ours)}
    labels = rng.integers(0, 3, (64, size, size)).astype(np.uint8)
    _, history = train.fit_unet((ready[:64, ..., 0], labels), None, base_filters=width, epochs=2, batch_size=batch,
                                seed=0, optimizer="adam")
    out["train_images_per_s"] = float(history.train_images_per_s.iloc[-1])
    predicted = rng.integers(0, 3, stack.shape).astype(np.uint8)
    contours = predicted[:, [0, 8]].transpose(1, 0, 2, 3).copy()
    subject = StoredSubject(key="bench", protocol="mesa", sax_images=stack, sax_affine_ijk_to_lps=np.eye(4),
                            pixel_spacing_mm=np.array([1.8, 1.5]), pitch_mm=10.0, ed_frame=0, es_frame=8,
                            contours=contours, contoured=np.ones((2, slices), bool), inlinevf=None, lax={},
                            lax_affine_ijk_to_lps={}, landmarks=None)
    out["measures_s_per_subject"] = statistics.median(
        _timed(lambda: segment.subject_results("bench", subject, predicted, 1.9)) for _ in range(repeats))
    return out


BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {
    "runner": bench_runner,
    "published": bench_published,
    "book": bench_book,
    "synth": bench_synth,
    "synth_pool": bench_synth_pool,
    "ingest": bench_ingest,
    "segment": bench_segment,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run cmrpipe's benchmarks and write their results as JSON.")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    results = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "benchmarks": {},
    }
    for name in names:
        print(f"bench {name} ...", flush=True)
        results["benchmarks"][name] = BENCHMARKS[name]()
        print(json.dumps(results["benchmarks"][name], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
