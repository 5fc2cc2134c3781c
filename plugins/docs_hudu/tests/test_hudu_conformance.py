"""Hudu passes the gateway's documentation conformance suite against its simulator."""

from gateway_hudu.simulator import HuduSimulator

from gateway.testing.conformance import DocsConformanceSuite


class TestHuduConformance(DocsConformanceSuite):
    simulator_class = HuduSimulator
