"""The gateway's PSA conformance suite, run through the real pipeline against the Autotask simulator."""

from __future__ import annotations

from gateway.testing.conformance import ConformanceSuite
from gateway_autotask.simulator import AutotaskSimulator


class TestAutotaskConformance(ConformanceSuite):
    simulator_class = AutotaskSimulator
