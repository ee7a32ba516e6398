"""The training-service engine's options: read from ``engine_options`` or the older ``[training_service]`` table."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascore.errors import ConfigError
from nascore.experiment import ExperimentConfig
from nascore.plugin.factory import engine_options
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions

REMOTE_TOML = """
engine = "training-service"
trial_concurrency = 4
trial_gpu_number = 1
trial_timeout = "2h"
trial_memory_limit = "8GB"

[{table}]
platform = "remote"
known_hosts = "~/.ssh/known_hosts"
code_exclude = ["data", "*.ckpt"]

[[{table}.machines]]
host = "gpu1.example.org"
user = "alice"
key_file = "~/.ssh/id_ed25519"
python = "/opt/conda/bin/python"
gpu_indices = [0, 1]
max_trials_per_gpu = 2

[[{table}.machines]]
host = "gpu2.example.org"
port = 2222
use_agent = true
virtualenv = "/srv/venv"
"""


@pytest.mark.parametrize("table", ["engine_options", "training_service"])
def test_settings_load_from_toml_under_engine_options_or_the_older_table(tmp_path, table):
    path = tmp_path / "remote.toml"
    path.write_text(REMOTE_TOML.format(table=table))
    config = ExperimentConfig.load(path)
    service = engine_options(config.engine, config.engine_options)
    assert isinstance(service, TrainingServiceOptions)
    assert config.trial_memory_limit == 8 * 2**30 and config.trial_timeout == 7200.0
    assert service.platform == "remote" and service.code_exclude == ["data", "*.ckpt"] and not service.trust_unknown_hosts
    first, second = service.machines
    assert first.key_file == Path("~/.ssh/id_ed25519").expanduser() and first.gpu_indices == [0, 1]
    assert first.login == "alice@gpu1.example.org:22" and first.python_command == "/opt/conda/bin/python"
    assert second.port == 2222 and second.key_file is None and second.python_command == "/srv/venv/bin/python"
    assert second.label == second.login


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_settings_round_trip(tmp_path, suffix):
    options = TrainingServiceOptions(
        platform="remote", trust_unknown_hosts=True, heartbeat="1m", max_requeues=0,
        machines=[RemoteMachine(host="a", name="first", key_file=tmp_path / "key"), RemoteMachine(host="b", max_trials=2)],
    )
    config = ExperimentConfig(engine="training-service", experiment_dir=tmp_path, trial_memory_limit="512MB",
                              engine_options=options)
    loaded = ExperimentConfig.load(config.save(tmp_path / f"c{suffix}"))
    assert engine_options(loaded.engine, loaded.engine_options) == options
    assert options.heartbeat == 60.0


def test_the_older_table_with_another_engine_or_twice_is_an_error():
    with pytest.raises(ConfigError, match=r"config.training_service: the \[training_service\] table holds settings of "
                                          r"engine 'training-service'( / 'cgo')?, but engine is 'sequential'; remove the "
                                          r"table, or set engine = 'training-service'"):  # cgo reads it too, where installed
        ExperimentConfig.from_dict({"training_service": {"platform": "local"}})
    with pytest.raises(ConfigError, match="python set both in"):
        ExperimentConfig.from_dict({"engine": "training-service", "training_service": {"python": "a"},
                                    "engine_options": {"python": "b"}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"platform": "cloud"}, "config.engine_options.platform: must be one of 'local', 'remote'"),
        ({"platform": "remote"}, "needs at least one machine in engine_options.machines"),
        ({"machines": [{"host": "a", "port": "22"}]}, "config.engine_options.machines[0].port: expected an int"),
        ({"machines": [{"hots": "a"}]}, "config.engine_options.machines[0]: unknown setting 'hots': did you mean 'host'?"),
        ({"machines": [{"host": "a"}, {"host": "a"}]}, "lists the same machine twice"),
        ({"gpu_indices": [0, 0]}, "gpu_indices: lists a GPU twice"),
        ({"gpu_indices": [-1]}, "gpu_indices: must list GPU indices"),
        ({"max_trials_per_gpu": 0}, "config.engine_options.max_trials_per_gpu: must be positive"),
        ({"trust_unknown_hosts": "yes"}, "config.engine_options.trust_unknown_hosts: expected true or false"),
        ({"heartbeat": "often"}, "config.engine_options.heartbeat"),
        ({"heartbeet": 5}, "config.engine_options: unknown setting 'heartbeet': did you mean 'heartbeat'?"),
    ],
)
def test_wrong_settings_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        engine_options("training-service", data)
    assert message in str(info.value)
