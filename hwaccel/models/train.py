"""Training of the reference models: seconds on a CPU, deterministic, cached by its recipe."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .data import Split, digits, tokens
from .nets import CNN, LSTMClassifier

__all__ = ["Recipe", "RECIPES", "load", "train", "accuracy", "cache_dir"]


@dataclass(frozen=True)
class Recipe:
    model: str
    epochs: int
    batch: int
    lr: float
    seed: int = 0
    version: int = 1  # bump when the data or the network changes


RECIPES = {
    "cnn": Recipe("cnn", epochs=12, batch=32, lr=2e-3),
    "lstm": Recipe("lstm", epochs=6, batch=100, lr=1e-2),
}


def cache_dir() -> Path:
    return Path(os.environ.get("HWACCEL_CACHE", Path.cwd() / "build" / "models"))


def _data(name: str) -> Split:
    if name == "cnn":
        return digits()
    if name == "lstm":
        return tokens()
    raise ValueError(f"model must be 'cnn' or 'lstm', not {name!r}")


def _net(name: str) -> nn.Module:
    return CNN() if name == "cnn" else LSTMClassifier()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    hits = 0
    for i in range(0, len(y), batch):
        hits += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return hits / len(y)


def train(recipe: Recipe, data: Split) -> nn.Module:
    torch.manual_seed(recipe.seed)
    model = _net(recipe.model)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    gen = torch.Generator().manual_seed(recipe.seed)
    n = len(data.y_train)
    for _ in range(recipe.epochs):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(recipe.batch):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            opt.step()
    return model.eval()


def load(name: str, *, retrain: bool = False) -> tuple[nn.Module, Split]:
    """The trained float model ``name`` and its data split (trained once, then cached)."""
    recipe = RECIPES.get(name)
    if recipe is None:
        raise ValueError(f"model must be one of {', '.join(RECIPES)}, not {name!r}")
    data = _data(name)
    key = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"{name}-{key}.pt"
    model = _net(name)
    if path.exists() and not retrain:
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval(), data
        except Exception:  # a truncated or foreign file: train again rather than fail
            path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers and benchmarks ask for the same model: one trains, the others wait
    # for its file rather than train it again.
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and not retrain:
            try:
                model.load_state_dict(torch.load(path, weights_only=True))
                return model.eval(), data
            except Exception:
                path.unlink(missing_ok=True)
        model = train(recipe, data)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
    return model, data
