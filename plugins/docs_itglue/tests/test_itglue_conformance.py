"""IT Glue passes the gateway's documentation conformance suite against its simulator."""

from gateway_itglue.simulator import ITGlueSimulator

from gateway.testing.conformance import DocsConformanceSuite


class TestITGlueConformance(DocsConformanceSuite):
    simulator_class = ITGlueSimulator
