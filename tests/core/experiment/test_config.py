"""ExperimentConfig: defaults, validation, TOML/JSON round trips, errors that name the field path."""

from __future__ import annotations

import json

import pytest

from nascore.errors import ConfigError
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import parse_duration


def test_defaults():
    config = ExperimentConfig()
    assert config.engine == "sequential" and config.format == "simplified"
    assert config.optimize_mode == "maximize" and config.trial_concurrency == 1


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_round_trip(tmp_path, suffix):
    config = ExperimentConfig(
        max_trials=50, max_duration="2h", seed=7, optimize_mode="minimize", experiment_dir=tmp_path,
        engine_options={"workers": 2},
    )
    path = config.save(tmp_path / f"exp{suffix}")
    loaded = ExperimentConfig.load(path)
    assert loaded == config
    assert loaded.max_duration == 7200.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_trials": "many"}, "config.max_trials"),
        ({"max_trails": 10}, "max_trails"),
        ({"optimize_mode": "up"}, "optimize_mode must be one of 'maximize', 'minimize'"),
        ({"max_duration": "soon"}, "config.max_duration"),
        ({"trial_concurrency": 0}, "trial_concurrency must be positive"),
        ({"seed": 1.5}, "config.seed"),
        ({"engine": ""}, "engine must be a non-empty name"),
        ({"experiment_dir": 3}, "config.experiment_dir"),
    ],
)
def test_wrong_field_or_type_names_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(data)
    assert message in str(info.value)


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('max_trials = "ten"\n')
    with pytest.raises(ConfigError, match=r"bad\.toml\.max_trials"):
        ExperimentConfig.load(path)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ExperimentConfig.load(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        ExperimentConfig.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"\.toml or \.json"):
        ExperimentConfig.load(tmp_path / "x.yaml")


def test_json_file_with_nested_problem(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"engine_options": [1, 2]}))
    with pytest.raises(ConfigError, match="engine_options"):
        ExperimentConfig.load(path)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration(5) == 5.0
    assert parse_duration("1.5h") == 5400 and parse_duration("2d") == 172800
    for bad in ["-1", "1w", True, 0]:
        with pytest.raises(ValueError):
            parse_duration(bad)
