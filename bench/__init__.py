"""Benchmarks of the gateway against its limits and its alternatives (issue 6).

Run ``python -m bench`` (``--quick`` for the under-a-minute version). Every figure is a ratio
against a baseline measured in the same run, printed as one line
``name: value unit (baseline ..., ratio ..., target ...)`` and written to
``bench/results.json``. ``docs/benchmarks.md`` records the latest figures and how to reproduce
them.

Modules: ``report`` (figures, lines, the results file), ``rig`` (redis-server, simulators, API
and worker processes), ``context`` (what a figure gets), ``tap`` (when a simulator sees each
vendor call), ``probe`` (one write at a time, caller to vendor), ``load`` (a loopback load
generator in its own process), ``proc`` (entry points of the processes a run starts),
``bare_app`` and ``sqlite_app`` (baselines), ``sampler`` and ``profile_api`` (profiles), and one
``fig_*`` module per figure.
"""
