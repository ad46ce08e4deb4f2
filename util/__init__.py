"""Helpers every room may use; this package imports no other room (tests/test_import_graph.py).

====================  =============================================================
``registry.py``       ``Registry``: the one name -> object table behind every choice
``errors.py``         ``UserError`` and the one-line report of a user's mistake
``checkpoint.py``     atomic writes, safe loads, RNG state
``weights.py``        one network's weight files (``.pth`` and its ``.safetensors`` twin)
``checksums.py``      SHA-256 records of downloaded files
``saved_options.py``  the options a run saves, and those that define its networks
``run_folder.py``     one live writer per folder
``hardware.py``       what this machine computes natively; the fastest ``--amp``
``lab.py``            RGB <-> CIE Lab (colorization)
``signal_names.py``   ``--preempt_signal``'s names (``USR1``, ``SIGUSR1``, ``10``) as signals
``util.py``           tensors to display images, seeding, the background image writer
====================  =============================================================

Nothing here reads the options object; every helper takes plain arguments so it can be
tested alone. Code that belongs to one room lives in that room: metrics and result writing
in ``evaluation/``, pages and display back ends in ``reporting/``.
"""
