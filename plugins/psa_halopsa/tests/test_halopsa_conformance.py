"""The shared PSA conformance suite, run through the real pipeline against the Halo simulator."""

from __future__ import annotations

from gateway.testing.conformance import ConformanceSuite

from gateway_halopsa.simulator import HaloSimulator


class TestHaloConformance(ConformanceSuite):
    simulator_class = HaloSimulator
