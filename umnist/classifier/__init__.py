"""Digit re-classifier: EfficientNetV2-B1 trained on 128 px digit crops, used with invert TTA.

Modules, in the order data flows: `config` (the `classifier` section), `augment` (albumentations pipeline),
`data` (streaming the npz crop shards), `model` (network factory and the weights files), `train`, `predict`,
`cli` (`umnist train-classifier`). Only `config` is light; the others import torch, timm or albumentations.
"""
