"""Atera passes the gateway's RMM conformance suite against its simulator."""

from gateway_atera.simulator import AteraSimulator

from gateway.testing.conformance import RmmConformanceSuite


class TestAteraConformance(RmmConformanceSuite):
    simulator_class = AteraSimulator
