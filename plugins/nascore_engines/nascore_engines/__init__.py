"""nascore's built-in execution engines.

``sequential`` runs trials one by one in the experiment process; ``training-service`` runs them in
isolated worker processes, on this machine or on remote machines over SSH (the ``remote`` extra).
"""

from nascore_engines.sequential import SequentialEngine
from nascore_engines.training_service import RemoteMachine, TrainingServiceEngine, TrainingServiceOptions

__all__ = ["RemoteMachine", "SequentialEngine", "TrainingServiceEngine", "TrainingServiceOptions"]
