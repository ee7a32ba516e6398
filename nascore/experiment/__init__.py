"""Experiments: configuration, the SQLite store, running, resuming and exporting."""

from nascore.experiment.config import ExperimentConfig, default_experiment_dir
from nascore.experiment.experiment import Experiment
from nascore.experiment.store import ExperimentStore, list_experiments

__all__ = ["Experiment", "ExperimentConfig", "ExperimentStore", "default_experiment_dir", "list_experiments"]
