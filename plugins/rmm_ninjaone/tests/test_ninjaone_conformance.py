"""NinjaOne passes the gateway's RMM conformance suite against its simulator."""

from gateway_ninjaone.simulator import NinjaOneSimulator

from gateway.testing.conformance import RmmConformanceSuite


class TestNinjaOneConformance(RmmConformanceSuite):
    simulator_class = NinjaOneSimulator
