"""Labels: automatic labels are reproducible, scoped, and user labels are validated."""

from __future__ import annotations

import pytest

from nascore.errors import SearchSpaceError
from nascore.space import Categorical, auto_label, label_scope
from nascore.space.label import check_label, current_scope_path


def test_auto_labels_count_up_inside_a_scope() -> None:
    with label_scope(None):
        assert [auto_label("choice"), auto_label("choice"), auto_label("layerchoice")] == [
            "choice_1",
            "choice_2",
            "layerchoice_3",
        ]


def test_entering_a_scope_restarts_the_counters() -> None:
    def labels() -> list[str]:
        with label_scope(None):
            return [Categorical([1, 2]).label for _ in range(3)]

    assert labels() == labels() == ["choice_1", "choice_2", "choice_3"]


def test_named_scopes_nest_into_paths() -> None:
    with label_scope(None):
        with label_scope("block"):
            assert auto_label("choice") == "block/choice_1"
            with label_scope("inner"):
                assert current_scope_path() == "block/inner"
                assert auto_label("choice") == "block/inner/choice_1"
            # the outer counter is untouched by the inner scope
            assert auto_label("choice") == "block/choice_2"
        assert auto_label("choice") == "choice_1"


def test_root_scope_replaces_the_enclosing_path() -> None:
    with label_scope("outer"), label_scope("cell_1/op_2_0", root=True):
        assert auto_label("choice") == "cell_1/op_2_0/choice_1"


def test_scope_is_restored_after_an_exception() -> None:
    with label_scope(None):
        with pytest.raises(RuntimeError), label_scope("broken"):
            raise RuntimeError("boom")
        assert current_scope_path() == ""
        assert auto_label("x") == "x_1"


def test_explicit_labels_are_kept_as_given() -> None:
    with label_scope("scope"):
        assert Categorical([1, 2], label="width").label == "width"


@pytest.mark.parametrize("bad", ["", "has space", "tab\there", 3, None])
def test_invalid_labels_are_rejected_with_the_rule(bad: object) -> None:
    with pytest.raises(SearchSpaceError, match="non-empty string without whitespace"):
        check_label(bad)


def test_invalid_label_on_a_choice_names_the_label() -> None:
    with pytest.raises(SearchSpaceError, match="'my width'"):
        Categorical([1, 2], label="my width")


def test_invalid_scope_name_is_rejected() -> None:
    with pytest.raises(SearchSpaceError, match="label scope"):
        label_scope("a b")
