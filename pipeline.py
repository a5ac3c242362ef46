"""`python pipeline.py --out umnist-pipeline.yaml ...` (make compile): compile the pipeline of the package's
`umnist.pipeline` (the graph and its components live there; `python -m umnist.pipeline` is the same)."""

from umnist.pipeline.graph import main

if __name__ == "__main__":
    raise SystemExit(main())
