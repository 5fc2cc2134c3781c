"""The testing kit: simulator base, conformance suite and pytest fixtures for plugin authors."""
