"""umnist: the 1st-place UltraMNIST solution as a reproducible pipeline.

Every stage is a plain function over files (``umnist.<stage>.run``) and a subcommand of the ``umnist`` CLI.
Nothing here imports KFP: the components in ``components/`` are thin wrappers over this package.
"""

__version__ = "0.1.0"
