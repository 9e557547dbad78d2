"""A hypothesis strategy for arbitrary JSON values, shared by the script-engine tests.

Rules: integers stay within +-2**53 (JavaScript numbers are doubles) and floats are
finite, so every value survives a JSON round trip through QuickJS and jq unchanged.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
