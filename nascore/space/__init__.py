"""Framework-agnostic search spaces.

Decisions (:class:`Categorical`, :class:`CategoricalMultiple`, :class:`Numerical`), expressions
over them, labels, samples (``{label: value}`` dicts) and the operations every space supports:
``simplify()``, ``random(seed=...)``, ``grid()``, ``freeze(sample)`` and ``contains(sample)``.

Conditional spaces and constraints (:mod:`nascore.space.conditions`): a decision inside a branch
(a ``LayerChoice`` candidate, a ``Repeat`` block, a ``switch_case`` branch) is active only when the
branch is taken; samples are canonical (only active decisions), so ``grid()`` and
``space_size()`` count distinct architectures. :class:`ExpressionConstraint` restricts a space to
the samples satisfying a condition.
Nothing here knows about PyTorch; :mod:`nascore.nn` builds on it.

Priors: ``Categorical(..., weights=...)``, ``CategoricalMultiple(..., weights=...)`` and the
distribution of a :class:`Numerical` (uniform, log-uniform, normal, log-normal or any frozen
``scipy.stats`` distribution; see :mod:`nascore.space.distributions`). Random sampling
(``random()``, and ``random_value(rng)``, which strategies use) follows them. NNI's shortcuts
:func:`uniform`, :func:`quniform`, :func:`loguniform`, :func:`qloguniform`, :func:`normal`,
:func:`qnormal`, :func:`lognormal`, :func:`qlognormal` and :func:`randint` are here too.
"""

from nascore.space.choice import (
    Categorical,
    CategoricalMultiple,
    Numerical,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from nascore.space.conditions import Constraint, ExpressionConstraint
from nascore.space.expression import MutableExpression
from nascore.space.frozen import current_frozen_sample, frozen_context
from nascore.space.label import auto_label, label_scope
from nascore.space.mutable import (
    LabelledMutable,
    Mutable,
    MutableDict,
    MutableList,
    Sample,
    collect_mutables,
    dedup_mutables,
    sample_key,
)

__all__ = [
    "Categorical",
    "CategoricalMultiple",
    "Constraint",
    "ExpressionConstraint",
    "LabelledMutable",
    "Mutable",
    "MutableDict",
    "MutableExpression",
    "MutableList",
    "Numerical",
    "Sample",
    "auto_label",
    "choice",
    "collect_mutables",
    "current_frozen_sample",
    "dedup_mutables",
    "frozen_context",
    "label_scope",
    "loguniform",
    "lognormal",
    "normal",
    "qloguniform",
    "qlognormal",
    "qnormal",
    "quniform",
    "randint",
    "sample_key",
    "uniform",
]
