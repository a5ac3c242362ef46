"""Digit re-classifier: EfficientNetV2-B1 trained on 128 px digit crops, used with invert TTA.

    from umnist import classifier
    classifier.run("data/crops", "runs/classifier", "tiny")   # returns summary.json's summary

Modules, in the order data flows: `config` (the `classifier` section), `augment` (albumentations pipeline),
`data` (streaming the npz crop shards), `model` (network factory and the weights files), `train` (`run`),
`inference`, `cli` (`umnist train-classifier`). Only `config` is light; the others import torch, timm or
albumentations, so `run` is imported on first use: `umnist --help` stays fast.
"""


def __getattr__(name: str):
    if name == "run":
        from umnist.classifier.train import run

        return run
    raise AttributeError(f"module 'umnist.classifier' has no attribute {name!r}")
