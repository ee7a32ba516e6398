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


# --- training-service settings ----------------------------------------------------------------------

REMOTE_TOML = """
engine = "training-service"
trial_concurrency = 4
trial_gpu_number = 1
trial_timeout = "2h"
trial_memory_limit = "8GB"

[training_service]
platform = "remote"
known_hosts = "~/.ssh/known_hosts"
code_exclude = ["data", "*.ckpt"]

[[training_service.machines]]
host = "gpu1.example.org"
user = "alice"
key_file = "~/.ssh/id_ed25519"
python = "/opt/conda/bin/python"
gpu_indices = [0, 1]
max_trials_per_gpu = 2

[[training_service.machines]]
host = "gpu2.example.org"
port = 2222
use_agent = true
virtualenv = "/srv/venv"
"""


def test_training_service_settings_load_from_toml(tmp_path):
    from pathlib import Path

    path = tmp_path / "remote.toml"
    path.write_text(REMOTE_TOML)
    config = ExperimentConfig.load(path)
    service = config.training_service
    assert config.trial_memory_limit == 8 * 2**30 and config.trial_timeout == 7200.0
    assert service.platform == "remote" and service.code_exclude == ["data", "*.ckpt"] and not service.trust_unknown_hosts
    first, second = service.machines
    assert first.key_file == Path("~/.ssh/id_ed25519").expanduser() and first.gpu_indices == [0, 1]
    assert first.login == "alice@gpu1.example.org:22" and first.python_command == "/opt/conda/bin/python"
    assert second.port == 2222 and second.key_file is None and second.python_command == "/srv/venv/bin/python"
    assert second.label == second.login


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_training_service_settings_round_trip(tmp_path, suffix):
    from nascore.experiment.config import RemoteMachine, TrainingServiceConfig

    config = ExperimentConfig(
        engine="training-service", experiment_dir=tmp_path, trial_memory_limit="512MB",
        training_service=TrainingServiceConfig(
            platform="remote", trust_unknown_hosts=True, heartbeat="1m", max_requeues=0,
            machines=[RemoteMachine(host="a", name="first", key_file=tmp_path / "key"), RemoteMachine(host="b", max_trials=2)],
        ),
    )
    assert ExperimentConfig.load(config.save(tmp_path / f"c{suffix}")) == config
    assert config.training_service.heartbeat == 60.0


def test_default_training_service_settings_stay_out_of_saved_files(tmp_path):
    assert "training_service" not in ExperimentConfig(experiment_dir=tmp_path).to_dict()
    assert "trial_memory_limit" not in ExperimentConfig(experiment_dir=tmp_path).to_dict()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"training_service": {"platform": "cloud"}}, "platform must be one of 'local', 'remote'"),
        ({"training_service": {"platform": "remote"}}, "needs at least one machine in training_service.machines"),
        ({"training_service": {"machines": [{"host": "a", "port": "22"}]}}, "config.training_service.machines[0].port"),
        ({"training_service": {"machines": [{"hots": "a"}]}}, "config.training_service.machines[0]"),
        ({"training_service": {"machines": [{"host": "a"}, {"host": "a"}]}}, "lists the same machine twice"),
        ({"training_service": {"gpu_indices": [0, 0]}}, "gpu_indices lists a GPU twice"),
        ({"training_service": {"gpu_indices": [-1]}}, "gpu_indices must list GPU indices"),
        ({"training_service": {"max_trials_per_gpu": 0}}, "max_trials_per_gpu must be positive"),
        ({"training_service": {"trust_unknown_hosts": "yes"}}, "config.training_service.trust_unknown_hosts"),
        ({"training_service": {"heartbeat": "often"}}, "config.training_service.heartbeat"),
        ({"trial_memory_limit": "lots"}, "config.trial_memory_limit"),
        ({"trial_memory_limit": 0}, "a memory size must be positive"),
    ],
)
def test_wrong_training_service_settings_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(data)
    assert message in str(info.value)


def test_memory_sizes():
    from nascore.experiment.config import parse_size

    assert parse_size("512MB") == parse_size("512MiB") == parse_size("512m") == 512 * 2**20
    assert parse_size("4GB") == 4 * 2**30 and parse_size(1024) == 1024 and parse_size("1.5k") == 1536
    for bad in ["-1", "1XB", True, 0, "GB"]:
        with pytest.raises(ValueError):
            parse_size(bad)
