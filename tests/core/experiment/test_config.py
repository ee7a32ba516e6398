"""ExperimentConfig: defaults, validation, TOML/JSON round trips, errors that name the field path."""

from __future__ import annotations

import json
import pickle

import attrs
import pytest

from nascore.errors import ConfigError
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import parse_duration


def test_defaults():
    config = ExperimentConfig()
    assert config.engine == "sequential" and config.format == "simplified"
    assert config.optimize_mode is None and config.trial_concurrency == 1  # None: follow the evaluator
    assert config.fail_fast == 3


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
        ({"max_trials": "many"}, "config.max_trials: expected an int or None, got 'many' (str)"),
        ({"max_trails": 10}, "config: unknown setting 'max_trails': did you mean 'max_trials'?"),
        ({"optimize_mode": "up"}, "config.optimize_mode: must be 'maximize', 'minimize' or None, got 'up'"),
        ({"max_duration": "soon"}, "config.max_duration: expected a duration"),
        ({"trial_concurrency": 0}, "config.trial_concurrency: must be positive, got 0"),
        ({"seed": 1.5}, "config.seed: expected an int or None, got 1.5 (float)"),
        ({"engine": ""}, "config.engine: must not be empty"),
        ({"experiment_dir": 3}, "config.experiment_dir: expected a folder path"),
        ({"fail_fast": -1}, "config.fail_fast: must not be negative, got -1"),
        ({"fail_fast": "3"}, "config.fail_fast: expected an int, got '3' (str)"),
        ({"strategy_options": []}, "config.strategy_options: expected a dict"),
        ({"strategy": ""}, "config.strategy: must not be empty"),
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


# --- built in Python: every field names itself, the same way as in a file -------------------------

# (field, bad value, the start of the message after "config.<field>: ")
BAD_VALUES = [
    ("engine", "", "must not be empty"),
    ("engine", 3, "expected a str, got 3 (int)"),
    ("format", None, "expected a str, got None (NoneType)"),
    ("max_trials", "10", "expected an int or None, got '10' (str)"),
    ("max_trials", 2.5, "expected an int or None, got 2.5 (float)"),
    ("max_trials", True, "expected an int or None, got True (bool)"),
    ("max_trials", 0, "must be positive, got 0"),
    ("max_duration", "ten minutes", "expected a duration such as 600, '90s', '10m' or '2h', got 'ten minutes'"),
    ("max_duration", float("nan"), "a duration must be a finite number"),
    ("trial_concurrency", 0, "must be positive, got 0"),
    ("trial_concurrency", "4", "expected an int, got '4' (str)"),
    ("trial_gpu_number", -1, "must not be negative, got -1"),
    ("trial_timeout", -1, "a duration must be positive, got -1"),
    ("trial_memory_limit", "lots", "expected a size"),
    ("engine_options", ["a"], "expected a dict (a table in TOML), got ['a'] (list)"),
    ("optimize_mode", "max", "must be 'maximize', 'minimize' or None, got 'max' (str)"),
    ("seed", "7", "expected an int or None, got '7' (str)"),
    ("seed", -1, "must not be negative, got -1"),
    ("fail_fast", -1, "must not be negative, got -1"),
    ("fail_fast", 1.0, "expected an int, got 1.0 (float)"),
    ("experiment_dir", 3, "expected a folder path (a str or pathlib.Path), got 3 (int)"),
    ("experiment_dir", "", "the folder path is empty"),
    ("experiment_name", 5, "expected a str or None, got 5 (int)"),
    ("engine_options", [1, 2], "expected a dict (a table in TOML), got [1, 2] (list)"),
    ("format_options", {1: "x"}, "setting names must be str, got 1 (int)"),
]


@pytest.mark.parametrize(("field", "value", "problem"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_a_bad_value_in_python_names_the_field_and_what_to_give(field, value, problem):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"config.{field}: {problem}")
    assert "; " in message[len(f"config.{field}: {problem}"):]  # followed by what to give instead


@pytest.mark.parametrize(("field", "value", "problem"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_evolve_and_assignment_check_like_the_constructor(tmp_path, field, value, problem):
    config = ExperimentConfig(experiment_dir=tmp_path)
    with pytest.raises(ConfigError, match=f"^config\\.{field}: "):
        attrs.evolve(config, **{field: value})
    with pytest.raises(ConfigError, match=f"^config\\.{field}: "):
        setattr(config, field, value)


def test_a_file_and_python_give_the_same_message(tmp_path):
    for field, value in [("max_trials", "10"), ("fail_fast", -2), ("optimize_mode", "up"), ("trial_timeout", "1w")]:
        with pytest.raises(ConfigError) as in_python:
            ExperimentConfig(**{field: value})
        path = tmp_path / "exp.json"
        path.write_text(json.dumps({field: value}))
        with pytest.raises(ConfigError) as from_file:
            ExperimentConfig.load(path)
        assert str(in_python.value).replace("config.", "exp.json.", 1) in str(from_file.value)


def test_a_file_reports_every_problem_at_once(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('max_trials = "ten"\nfail_fast = -1\noptimize_mode = "up"\nmax_trails = 3\n')
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.load(path)
    message = str(info.value)
    assert message.startswith("invalid experiment configuration (4 problems):")
    for line in [
        "exp.toml.max_trials: expected an int or None, got 'ten' (str)",
        "exp.toml.fail_fast: must not be negative, got -1",
        "exp.toml.optimize_mode: must be 'maximize', 'minimize' or None, got 'up' (str)",
        "exp.toml: unknown setting 'max_trails': did you mean 'max_trials'?",
    ]:
        assert f"\n  {line}" in message


def test_good_values_are_kept_as_plain_types(tmp_path):
    numpy = pytest.importorskip("numpy")
    config = ExperimentConfig(seed=numpy.int64(5), max_trials=numpy.int32(3), experiment_dir=str(tmp_path))
    assert type(config.seed) is int and config.seed == 5 and type(config.max_trials) is int
    assert ExperimentConfig.load(config.save(tmp_path / "c.toml")) == config


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_fail_fast_and_optimize_mode_round_trip(tmp_path, suffix):
    following = ExperimentConfig(experiment_dir=tmp_path)
    assert "optimize_mode" not in following.to_dict()  # None: left out, and None again when loaded
    assert ExperimentConfig.load(following.save(tmp_path / f"a{suffix}")).optimize_mode is None
    config = ExperimentConfig(fail_fast=0, optimize_mode="minimize", experiment_dir=tmp_path)
    assert ExperimentConfig.load(config.save(tmp_path / f"b{suffix}")) == config


def test_a_field_error_survives_pickling():
    with pytest.raises(ConfigError) as info:
        ExperimentConfig(max_trials="10")
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, ConfigError) and str(again) == str(info.value)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("10m") == 600 and parse_duration(5) == 5.0
    assert parse_duration("1.5h") == 5400 and parse_duration("2d") == 172800
    for bad in ["-1", "1w", True, 0, float("nan"), float("inf")]:
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_default_option_tables_stay_out_of_saved_files(tmp_path):
    saved = ExperimentConfig(experiment_dir=tmp_path).to_dict()
    assert not {"engine_options", "format_options", "strategy_options", "trial_memory_limit"} & set(saved)


def test_strategy_and_its_arguments_load_from_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('strategy = "evolution"\n[strategy_options]\npopulation_size = 20\n[engine_options]\nx = 1\n')
    config = ExperimentConfig.load(path)
    assert config.strategy == "evolution" and config.strategy_options == {"population_size": 20}
    assert config.engine_options == {"x": 1}
    assert ExperimentConfig.load(config.save(tmp_path / "again.toml")) == config


def test_a_table_no_installed_engine_reads_is_an_unknown_setting():
    with pytest.raises(ConfigError, match=r"config: unknown setting 'trainig_service'"):
        ExperimentConfig.from_dict({"trainig_service": {"platform": "local"}})


def test_memory_sizes():
    from nascore.experiment.config import parse_size

    assert parse_size("512MB") == parse_size("512MiB") == parse_size("512m") == 512 * 2**20
    assert parse_size("4GB") == 4 * 2**30 and parse_size(1024) == 1024 and parse_size("1.5k") == 1536
    for bad in ["-1", "1XB", True, 0, "GB", float("inf")]:
        with pytest.raises(ValueError):
            parse_size(bad)
