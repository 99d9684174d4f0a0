"""pytest plugin, loaded by `-p syncsite.testing` (pyproject.toml) before Django reads its settings:
the suite runs with DEBUG off, as production does, with the explicit local values of
`syncsite.localenv` (its own secret, local host names, plain http). Processes the tests start
(the sandbox, workers) inherit them."""
import os

from syncsite.localenv import apply_local_env

apply_local_env(os.environ)
# Each test process keeps its upstream budgets to itself (tests that share one say so).
os.environ.setdefault("RATE_LIMIT_DIR", "")
