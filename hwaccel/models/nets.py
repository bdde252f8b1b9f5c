"""The reference networks, exactly as the brief gives them."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CNN", "LSTMClassifier", "VOCAB", "EMBED", "HIDDEN", "CLASSES"]

VOCAB, EMBED, HIDDEN, CLASSES = 10_000, 64, 64, 10


class CNN(nn.Module):
    """28x28x1 -> conv 32 3x3 + ReLU -> pool 2 -> conv 64 3x3 + ReLU -> pool 2 -> conv 64 3x3 +
    ReLU -> flatten (576) -> linear 64 + ReLU -> linear 10 (2,794,240 MACs per image)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(576, 64)
        self.fc2 = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.conv3(x))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


class LSTMClassifier(nn.Module):
    """Embedding 10000x64 -> LSTM 64 (all steps) -> LSTM 64 (last step) -> linear 10."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.lstm1 = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.lstm2 = nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        x, _ = self.lstm1(x)
        x, _ = self.lstm2(x)
        return self.fc(x[:, -1])
