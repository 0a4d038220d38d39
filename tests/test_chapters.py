"""The real chapters, executed with papermill on a small smoke cohort: the chain from cohort to store."""

import json

import pandas as pd
import pytest
import yaml

from cmrpipe import runner
from cmrpipe.params import Params
from cmrpipe.paths import PARAMS_DIR


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    data = yaml.safe_load((PARAMS_DIR / "smoke.yaml").read_text())
    data.update(runs_dir=str(tmp / "runs"), n_subjects=12)
    path = tmp / "smoke.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    outcomes = runner.run_chapters(path, ["00b", "01"], book_dir=tmp / "book", progress=False)
    return Params.from_yaml(path), outcomes


def test_chapters_run_and_write_their_summary_keys(smoke_run):
    params, outcomes = smoke_run
    assert [(o.chapter.id, o.status) for o in outcomes] == [("00b", "ran"), ("01", "ran")]
    summary = json.loads((params.run_dir / "results" / "summary.json").read_text())
    assert summary["prep.n_subjects"] == 24
    assert summary["prep.n_excluded"] == 7 and summary["prep.n_included"] == 17  # the 7 planted faults


def test_data_preparation_finds_every_planted_fault_and_reads_the_truth(smoke_run):
    from cmrpipe.report import prep as tables

    params, _ = smoke_run
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
