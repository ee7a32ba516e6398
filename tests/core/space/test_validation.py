"""A sample with a label the space does not have (a typo) is refused by validate, contains and check_contains."""

from __future__ import annotations

import pytest

from nascore.errors import SampleValidationError, SampleValueError, UnknownLabelError
from nascore.space import Categorical, MutableDict, Numerical


def make_space() -> MutableDict:
    return MutableDict(
        {
            "width": Categorical([16, 32], label="width"),
            "act": Categorical(["relu", "gelu"], label="activation"),
            "dropout": Numerical(0.0, 0.5, label="dropout"),
        }
    )


VALID = {"width": 16, "activation": "relu", "dropout": 0.1}


def test_a_valid_sample_is_contained() -> None:
    space = make_space()
    assert space.contains(VALID)
    assert space.check_contains(VALID) is None
    space.validate(VALID)


def test_a_misspelt_label_is_refused_naming_it_the_closest_label_and_the_expected_ones() -> None:
    space = make_space()
    sample = {**VALID, "widht": 32}
    assert not space.contains(sample)
    error = space.check_contains(sample)
    assert isinstance(error, UnknownLabelError)
    assert isinstance(error, SampleValueError) and isinstance(error, SampleValidationError)
    assert error.label == "widht" and error.labels == ["widht"]
    assert error.expected == ["width", "activation", "dropout"]
    message = str(error)
    assert "unknown label 'widht' (did you mean 'width'?)" in message
    assert "the space's labels are 'width', 'activation', 'dropout'" in message
    with pytest.raises(UnknownLabelError, match=r"'widht' \(did you mean 'width'\?\)"):
        space.validate(sample)


def test_a_typo_in_place_of_a_label_names_the_typo_rather_than_the_missing_label() -> None:
    space = make_space()
    sample = {"width": 16, "activaton": "relu", "dropout": 0.1}
    with pytest.raises(UnknownLabelError, match=r"'activaton' \(did you mean 'activation'\?\)"):
        space.validate(sample)


def test_every_unknown_label_is_named() -> None:
    error = make_space().check_contains({**VALID, "drpout": 0.2, "zzz": 1})
    assert isinstance(error, UnknownLabelError)
    assert error.labels == ["drpout", "zzz"]
    assert "unknown labels 'drpout' (did you mean 'dropout'?), 'zzz';" in str(error)


def test_a_label_with_no_close_match_is_named_without_a_suggestion() -> None:
    error = make_space().check_contains({**VALID, "learning_rate": 0.1})
    assert isinstance(error, UnknownLabelError)
    assert "unknown label 'learning_rate';" in str(error) and "did you mean" not in str(error)


def test_a_single_decision_refuses_labels_of_other_decisions() -> None:
    width = Categorical([16, 32], label="width")
    assert width.contains({"width": 16})
    assert not width.contains({"width": 16, "depth": 2})
    assert width.freeze({"width": 16, "depth": 2}) == 16  # freezing part of a space reads its own label only


def test_a_long_list_of_labels_is_shortened() -> None:
    space = MutableDict({f"d{i}": Categorical([0, 1], label=f"choice_{i}") for i in range(40)})
    sample = {**space.default_sample(), "choice_x": 0}
    error = space.check_contains(sample)
    assert isinstance(error, UnknownLabelError) and len(error.expected) == 40
    assert "'choice_29', ... (10 more)" in str(error)
