"""`python -m umnist.pipeline --out umnist-pipeline.yaml ...`: compile the pipeline (see umnist.pipeline.graph)."""

from umnist.pipeline.graph import main

raise SystemExit(main())
