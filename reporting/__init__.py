"""What a person sees of a run: the HTML gallery and training page (``html.py``), the
training visualizer that feeds them (``visualizer.py``), live display back ends (visdom,
TensorBoard, W&B: ``display.py``), loss plots (``plots.py``) and progress bars
(``progress.py``).

``html.py`` knows nothing of torch or servers; the live back ends are optional, imported
only when asked for, and never stop or stall training when they cannot be reached. To add a
back end, subclass ``display.DisplayBackend`` and add one entry to ``display.BACKENDS``
(the class, which options switch it on, its arguments). ``scores.py`` words metric results
(console lines, gallery cells) that ``evaluation/`` computes.
"""
