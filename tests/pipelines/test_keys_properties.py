"""Properties of cache keys: parameter order never matters; any parameter change does."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from assay.pipe import DictParameter, IntParameter, ListParameter, PipeTask

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


class Keyed(PipeTask):
    a = IntParameter(default=0)
    options = DictParameter(default={})
    items = ListParameter(default=[])


@given(st.dictionaries(st.text(max_size=4), json_values, max_size=5), st.integers(), st.randoms())
def test_dict_order_and_keyword_order_do_not_change_the_signature(options, a, rnd) -> None:
    keys = list(options)
    rnd.shuffle(keys)
    shuffled = {k: options[k] for k in keys}
    first = Keyed(a=a, options=options)
    second = Keyed(options=shuffled, a=a)
    assert first.task_signature == second.task_signature


@given(st.lists(json_values, max_size=4), st.lists(json_values, max_size=4))
def test_different_lists_give_different_signatures(one, two) -> None:
    same = Keyed(items=one).task_signature == Keyed(items=two).task_signature
    # Equal as JSON (True and 1 are equal in Python but not as JSON values).
    assert same == (json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True))
