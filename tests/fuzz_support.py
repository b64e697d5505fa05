"""What the fuzz test modules share: the hypothesis profile, a JSON strategy, and the check that a
parser refuses bad input only with a one-line InputError."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sae_bench.core.errors import InputError

# SAE_BENCH_FUZZ_EXAMPLES raises the example count for a long local fuzzing run.
FUZZ = settings(max_examples=int(os.environ.get("SAE_BENCH_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)


def raises_only_input_errors(call):
    """Run `call`; an InputError must be one line. Returns the result, or None when it refused."""
    try:
        return call()
    except InputError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


def reading_refuses_only_as_input(path, content: bytes | str, read):
    """Write `content` to `path`, then `read(path)` must succeed or raise a one-line InputError."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return raises_only_input_errors(lambda: read(path))
