"""Shared fixtures: a seeded generator, parameter files, tiny chapter notebooks, a cohort with every planted
fault and a run of every real chapter."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from cmrpipe.paths import PARAMS_DIR
from tiny import TINY


@pytest.fixture(scope="session")
def faulty_cohort(tmp_path_factory):
    """A tiny smoke cohort of 6 + 6 subjects with every planted fault, made once (by a pool of two) for the
    tests that read it: ``(folder, truth)``. Read it, never change it."""
    from cmrpipe.synth.cohort import config_for, generate_cohort

    out = tmp_path_factory.mktemp("faulty") / "cohort"
    config = config_for("smoke", seed=4, n_subjects=6, faults=True, workers=2, **TINY)
    return out, generate_cohort(config, out, progress=False)


@pytest.fixture(scope="session")
def chapter_run(tmp_path_factory):
    """Every chapter, executed once with papermill on a smoke cohort of 16 + 16 subjects, for the tests of the real
    chapters and of the book: ``(params, outcomes, book_dir)``. At seed 8 the 12 clean MESA-like subjects leave
    Paper A's segmentation split its floor of two test subjects (seed 7 needs 30 subjects for that). Read it,
    never change it (the segmentation test that must change the store's index puts it back)."""
    from cmrpipe.params import Params
    from cmrpipe.paths import BOOK_DIR
    from cmrpipe.runner import run_chapters

    tmp = tmp_path_factory.mktemp("chapters")
    data = yaml.safe_load((PARAMS_DIR / "smoke.yaml").read_text())
    data.update(runs_dir=str(tmp / "runs"), n_subjects=16, seed=8)
    path = tmp / "smoke.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    book = tmp / "book"
    book.mkdir()
    shutil.copy(BOOK_DIR / "intro.md", book / "intro.md")
    outcomes = run_chapters(path, book_dir=book, progress=False)
    return Params.from_yaml(path), outcomes, book


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def write_params(tmp_path):
    """Write a copy of the smoke profile, with runs under tmp_path and any changes."""

    def write(name: str = "run.yaml", **changes) -> Path:
        data = yaml.safe_load((PARAMS_DIR / "smoke.yaml").read_text())
        data["runs_dir"] = str(tmp_path / "runs")
        data.update(changes)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def make_notebook(path: Path, *cells: str, markdown: str = "# A test chapter") -> Path:
    """A chapter notebook: a markdown title, a tagged ``parameters`` cell, then code cells."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), params]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
