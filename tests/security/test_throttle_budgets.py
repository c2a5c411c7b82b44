"""The budget rule on its own (security.throttle.Budget): free failures,
then a doubling wait from the last failure, capped; a hard budget waits out
its window. Flows that use it are tested through HTTP in their subjects."""

import pytest

from idp.security.throttle import Budget, budget

SOFT = Budget(free=5, window=900, max_delay=60)
HARD = Budget(free=5, window=900, max_delay=60, hard=True)


@pytest.mark.parametrize("failures", range(5))
def test_failures_within_the_free_budget_cost_no_wait(failures):
    assert SOFT.retry_after(failures, last=1000, now=1000) == 0
    assert HARD.retry_after(failures, last=1000, now=1000) == 0


@pytest.mark.parametrize(("failures", "wait"), [(5, 1), (6, 2), (7, 4), (8, 8), (10, 32), (11, 60), (40, 60)])
def test_each_failure_past_the_budget_doubles_the_wait_up_to_the_cap(failures, wait):
    assert SOFT.retry_after(failures, last=1000, now=1000) == wait


def test_the_wait_counts_from_the_last_failure():
    assert SOFT.retry_after(7, last=1000, now=1003) == 1
    assert SOFT.retry_after(7, last=1000, now=1004) == 0
    assert SOFT.retry_after(7, last=1000, now=5000) == 0


def test_a_hard_budget_waits_out_the_window_from_the_last_failure():
    assert HARD.retry_after(5, last=1000, now=1000) == 900
    assert HARD.retry_after(50, last=1000, now=1899) == 1
    assert HARD.retry_after(50, last=1000, now=1900) == 0


def test_a_huge_count_does_not_overflow_the_doubling():
    assert SOFT.retry_after(10**9, last=0, now=0) == 60


def test_a_budget_is_declared_by_the_names_of_its_settings(app):
    app.config.update(LOGIN_FREE_FAILURES_PER_ACCOUNT=7, LOGIN_THROTTLE_WINDOW=600, LOGIN_MAX_DELAY=120)
    with app.app_context():
        assert budget("LOGIN_FREE_FAILURES_PER_ACCOUNT", "LOGIN_THROTTLE_WINDOW", "LOGIN_MAX_DELAY") == \
            Budget(free=7, window=600, max_delay=120)
        # Without a delay setting the delays grow up to the window; a fixed number of free failures.
        assert budget(3, "LOGIN_THROTTLE_WINDOW", hard=True) == Budget(free=3, window=600, max_delay=600, hard=True)
