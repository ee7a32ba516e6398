"""Framework-agnostic search spaces.

Decisions (:class:`Categorical`, :class:`CategoricalMultiple`, :class:`Numerical`), expressions
over them, labels, samples (``{label: value}`` dicts) and the operations every space supports:
``simplify()``, ``random(seed=...)``, ``grid()``, ``freeze(sample)`` and ``contains(sample)``.
Nothing here knows about PyTorch; :mod:`nascore.nn` builds on it.
"""

from nascore.space.choice import Categorical, CategoricalMultiple, Numerical, choice
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
    "sample_key",
]
