"""One-shot NAS: DARTS, GumbelDARTS, ENAS, RandomOneShot and Proxyless on weight-sharing supernets.

A one-shot strategy turns the model space into a *supernet* (one network holding every candidate,
with weights shared between architectures), trains it once with the experiment's Lightning
evaluator, and exports the architectures it ranks best::

    from nascore.evaluators import Classification
    from nascore.experiment import Experiment, ExperimentConfig
    from nascore_strategies.oneshot import DARTS

    evaluator = Classification(train_dataloaders=train, val_dataloaders=val, num_classes=10, max_epochs=10)
    exp = Experiment(MySpace(), evaluator, DARTS(top_k=3), ExperimentConfig(format="raw"))
    exp.run()                      # trains the supernet, then records the 3 exported architectures as trials
    exp.export_top_models(top_k=3) # the exported samples, ranked by their trials' validation metric

The exported architectures are recorded as trials: the experiment's evaluator trains each one on its
own and its validation metric is the trial's result. Strategies are registered as ``darts``,
``gumbel-darts``, ``enas``, ``random-oneshot`` and ``proxyless``; training needs the
``oneshot`` extra (``pip install 'nascore-strategies[oneshot]'``, i.e. PyTorch Lightning).

A trained supernet hands its weights to sub-nets: ``export_top_models(formatter="instance")`` and
``supernet.freeze(sample)`` give plain models that inherit them, and :class:`SubnetEvaluator` lets
any multi-trial strategy search the trained supernet (each trial a sub-net with inherited weights,
batch norm recalibrated, evaluated without training: the SPOS / once-for-all workflow).

Your own primitives join through mutation hooks (:mod:`nascore_strategies.oneshot.hooks`) that
return supernet modules (:mod:`nascore_strategies.oneshot.supermodule`).
"""

from nascore_strategies.oneshot.base import OneShotStrategy
from nascore_strategies.oneshot.controller import ReinforceController, ReinforceField
from nascore_strategies.oneshot.darts import DARTS, GumbelDARTS
from nascore_strategies.oneshot.enas import ENAS
from nascore_strategies.oneshot.hooks import MutationHook, no_default_hook, traverse_and_mutate_submodules
from nascore_strategies.oneshot.penalty import ExpectedCostPenalty
from nascore_strategies.oneshot.proxyless import Proxyless
from nascore_strategies.oneshot.random_oneshot import RandomOneShot
from nascore_strategies.oneshot.subnet import SubnetEvaluator
from nascore_strategies.oneshot.supermodule import BaseSuperNetModule, MixedOperation

__all__ = [
    "DARTS",
    "ENAS",
    "BaseSuperNetModule",
    "ExpectedCostPenalty",
    "GumbelDARTS",
    "MixedOperation",
    "MutationHook",
    "OneShotStrategy",
    "Proxyless",
    "RandomOneShot",
    "ReinforceController",
    "ReinforceField",
    "SubnetEvaluator",
    "no_default_hook",
    "traverse_and_mutate_submodules",
]
