"""umnist: the 1st-place UltraMNIST solution as a reproducible pipeline.

Every stage is a plain function over files (``umnist.<stage>.run``) and a subcommand of the ``umnist`` CLI.
Only ``umnist.pipeline`` imports KFP: its components are thin wrappers over the stage functions.
"""

__version__ = "0.1.0"
