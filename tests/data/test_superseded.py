"""What a memory holds of a fact the input overwrote (`Superseded.fate`): the classification
training (`reward.stale_credit`) and `benchmarks/tool_use.py` rest on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memalpha.data import Superseded

CHANGE = Superseded(subject="Ines Varga", old="ivory", new="amber")
OLD = "The favourite colour of Ines Varga is ivory."
NEW = "The favourite colour of Ines Varga is amber."
OTHER = "The favourite colour of Kira Costa is ivory."


@pytest.mark.parametrize(
    ("contents", "fate"),
    [
        ([NEW], "overwritten"),
        ([NEW, OTHER], "overwritten"),  # someone else's ivory is not Ines's old value
        (["Ines Varga changed her favourite colour from ivory to amber."], "overwritten"),
        ([OLD, NEW], "both"),
        ([OLD], "old"),
        (["ines varga: IVORY"], "old"),  # case-insensitive
        ([OTHER], "lost"),
        ([], "lost"),
    ],
)
def test_fate_of_a_changed_fact(contents, fate):
    assert CHANGE.fate(contents) == fate


@given(st.lists(st.sampled_from([OLD, NEW, OTHER, "", "Ines Varga likes tea."]), max_size=6))
def test_fate_depends_only_on_which_statements_are_held(contents):
    fate = CHANGE.fate(contents)
    assert (fate in ("overwritten", "both")) == (NEW in contents)
    assert (fate in ("old", "both")) == (OLD in contents)
    assert CHANGE.fate(list(reversed(contents))) == fate


def test_a_change_needs_all_three_parts():
    with pytest.raises(ValueError):
        Superseded(subject="", old="ivory", new="amber")
