import dataclasses
import re

import pytest
import yaml

from cmrpipe.params import Params, ParamsError
from cmrpipe.paths import PARAMS_DIR, REPO_ROOT

PROFILES = ["smoke", "default", "paper"]


@pytest.mark.parametrize("profile", PROFILES)
def test_from_yaml_profiles_are_valid(profile):
    params = Params.from_yaml(PARAMS_DIR / f"{profile}.yaml")
    assert params.profile == profile
    assert params.run_dir == REPO_ROOT / "runs" / params.run_name


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_comment_every_key(profile):
    lines = (PARAMS_DIR / f"{profile}.yaml").read_text().splitlines()
    keyed = [line for line in lines if re.match(r"^[a-z_]+:", line)]
    assert {line.split(":")[0] for line in keyed} == {f.name for f in dataclasses.fields(Params)}
    uncommented = [line for line in keyed if "#" not in line]
    assert uncommented == []


def test_paper_profile_holds_the_papers_settings():
    params = Params.from_yaml(PARAMS_DIR / "paper.yaml")
    assert params.image_size_px == 256
    assert params.landmark_width == 1.0
    assert params.landmark_dense_units == 2048
    assert params.landmark_batch_size == 48
    assert params.mass_volume_shape == (256, 256, 13)
    assert params.mass_batch_size == 4


def _smoke():
    return yaml.safe_load((PARAMS_DIR / "smoke.yaml").read_text())


def test_from_mapping_unknown_and_missing_keys_are_named():
    data = _smoke()
    data["n_subject"] = data.pop("n_subjects")
    with pytest.raises(ParamsError, match=r"missing key\(s\): n_subjects; unknown key\(s\): n_subject"):
        Params.from_mapping(data, source="x.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("n_subjects", "many", "n_subjects must be int"),
    ("n_subjects", True, "n_subjects must be int"),
    ("n_subjects", -3, "n_subjects must be positive"),
    ("image_size_px", 0, "image_size_px must be positive"),
    ("landmark_width", "wide", "landmark_width must be float"),
    ("mass_volume_shape", [64, 64], "must have 3 items"),
    ("protocols", ["mesa", "philips"], "protocols must be a non-empty list"),
    ("store_compression", "zstd", "store_compression must be one of"),
    ("run_name", "../elsewhere", "plain folder name"),
    ("seed", -1, "seed must be >= 0"),
])
def test_from_mapping_rejects_bad_values(key, value, message):
    data = _smoke()
    data[key] = value
    with pytest.raises(ParamsError, match=re.escape(message)):
        Params.from_mapping(data, source="bad.yaml")


def test_from_mapping_accepts_int_for_float():
    data = _smoke()
    data["landmark_width"] = 1
    assert Params.from_mapping(data).landmark_width == 1.0


def test_from_yaml_missing_file_names_it(tmp_path):
    with pytest.raises(ParamsError, match="nope.yaml: cannot read"):
        Params.from_yaml(tmp_path / "nope.yaml")


def test_from_yaml_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match="list.yaml: expected a mapping"):
        Params.from_yaml(path)


def test_from_namespace_injected_keys_replace_the_profile():
    params = Params.from_namespace({"profile": "smoke", "seed": 99, "In": [], "unrelated": 1})
    assert params.seed == 99
    assert params.n_subjects == Params.from_yaml(PARAMS_DIR / "smoke.yaml").n_subjects


def test_from_namespace_defaults_to_default_profile():
    assert Params.from_namespace({}).profile == "default"


def test_digest_changes_with_any_value():
    a = Params.from_yaml(PARAMS_DIR / "smoke.yaml")
    assert a.digest() == Params.from_mapping(a.to_dict()).digest()
    assert a.digest() != dataclasses.replace(a, seed=a.seed + 1).digest()


def test_to_yaml_round_trips(tmp_path):
    a = Params.from_yaml(PARAMS_DIR / "paper.yaml")
    path = tmp_path / "p.yaml"
    path.write_text(a.to_yaml())
    assert Params.from_yaml(path) == a


def test_from_namespace_with_every_key_needs_no_profile_file(tmp_path):
    data = Params.from_yaml(PARAMS_DIR / "smoke.yaml").to_dict() | {"profile": "mycohort", "seed": 3}
    params = Params.from_namespace(data, params_dir=tmp_path)  # tmp_path holds no mycohort.yaml
    assert (params.profile, params.seed) == ("mycohort", 3)


def test_from_namespace_missing_keys_and_unknown_profile_names_the_file(tmp_path):
    with pytest.raises(ParamsError, match="mycohort.yaml: cannot read"):
        Params.from_namespace({"profile": "mycohort"}, params_dir=tmp_path)
