"""Every one-shot strategy passes nascore's one-shot conformance suite (nascore.testing.oneshot).

A check a strategy is known to fail is listed in the suite's ``known_failures`` (strict xfail: a fix
shows up as XPASS and must remove the entry). None is listed at present.
"""

from __future__ import annotations

from nascore.testing.oneshot import OneShotStrategyTestSuite


class TestDARTS(OneShotStrategyTestSuite):
    strategy_name = "darts"
    unsupported = {"any_inputs"}


class TestGumbelDARTS(OneShotStrategyTestSuite):
    strategy_name = "gumbel-darts"
    unsupported = {"any_inputs"}


class TestENAS(OneShotStrategyTestSuite):
    strategy_name = "enas"


class TestRandomOneShot(OneShotStrategyTestSuite):
    strategy_name = "random-oneshot"


class TestProxyless(OneShotStrategyTestSuite):
    strategy_name = "proxyless"
    unsupported = {"any_inputs"}
