"""Shared helpers: the plugin registry, user-facing errors, image conversion, HTML pages,
checkpoints and display back ends.

Nothing in this package reads the options object except ``visualizer``; every other
helper takes plain arguments so it can be tested alone.
"""
