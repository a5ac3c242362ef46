"""The KFP v2 pipeline, part of the package so that an installed `umnist` compiles and runs it (`umnist run`)
without a checkout: `graph` wires the six `components` (thin wrappers over the stage functions) into one graph
and compiles it; `images` names the images the components run in. Importing this imports KFP.
"""

from umnist.pipeline.graph import build, compile_pipeline, main

__all__ = ["build", "compile_pipeline", "main"]
