"""The MicroPizzaNet architecture, as the prior system defined it (about 600 parameters)."""

from __future__ import annotations

import torch
from torch import nn

from pizza_inference import CLASSES

INPUT_SIZE = 48


class MicroPizzaNet(nn.Module):
    """48x48 RGB -> logits over the six classes.

    conv 3->8 (3x3, stride 2, no bias) + BN + ReLU + maxpool 2; depthwise 8->8 (3x3) + BN + ReLU;
    pointwise 8->16 (1x1) + BN + ReLU + maxpool 2; global average pool; dropout 0.2; linear 16->6.
    """

    def __init__(self, num_classes: int = len(CLASSES), dropout: float = 0.2) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 16, kernel_size=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(16, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.block2(self.block1(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.dropout(self.features(x)))
        return logits
