"""Small transformer encoders: the attention workloads, ``transformer`` (digits) and
``transformer_tokens`` (the LSTM's token task).

``transformer`` is a small vision transformer on the bundled digits.

Each 8x8 digit (scikit-learn's, at its own resolution: no upsampling) is cut into 16 tokens of
2x2 pixels on the host (:func:`digit_patches`, as the CNN's data is upsampled on the host), so
the model's input is ``(16, 4)`` per sample::

    tokens (16 x 4) -> Linear 32 (patch embedding) -> + learned positional embedding (16 x 32)
    -> 2 x nn.TransformerEncoderLayer(32, 2 heads, feed-forward 64, GELU, batch_first)
    -> mean over the tokens -> Linear 10

MACs per inference, counted as :func:`hwaccel.compiler.ir.macs` counts them (a product of two
activations as a Linear: per head ``T * T * d`` for ``Q . K^T`` and as many for ``P . V``;
softmax, LayerNorm, GELU, adds and the mean count nothing): patch embedding 2,048; per layer
Q, K, V 49,152, scores 8,192, ``P . V`` 8,192, output projection 16,384, feed-forward 65,536
(147,456); head 320; in all 297,280.

``transformer_tokens`` (:class:`TokenTransformer`) runs the LSTM's synthetic token task
(:func:`~.data.tokens`, the same split), so the recurrent and the attention model are scored on one
task. Its token ids are gathered from an embedding on the host, as the LSTM's are::

    token ids (16) -> Embedding 10000 x 32 -> + learned positional embedding (16 x 32)
    -> 1 x nn.TransformerEncoderLayer(32, 2 heads, feed-forward 64, GELU, batch_first)
    -> mean over the tokens -> Linear 10

MACs per inference (the embedding is a gather, no MACs): one encoder layer 147,456, head 320;
in all 147,776.
Trained by its recipe it scores 0.896 top-1 on the 1,000 held-out sequences, the LSTM 0.852;
int8 on ``default_attention`` 0.895 (``hwaccel compare --model transformer_tokens --backends
golden,torch-int8 --preset default_attention``).
"""

from __future__ import annotations

import torch
from torch import nn

from .data import SEQ_LEN, Split, digits
from .nets import CLASSES, VOCAB

__all__ = ["DigitTransformer", "TokenTransformer", "digit_patches", "TOKENS", "PATCH", "MACS",
           "TOKEN_MACS"]

PATCH = 2
TOKENS = (8 // PATCH) ** 2
#: Multiply-accumulates per inference (see the module docstring).
MACS = 297_280
#: Multiply-accumulates per inference of :class:`TokenTransformer` (see the module docstring).
TOKEN_MACS = 147_776


def patches(x: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """``(N, 1, H, W)`` images to ``(N, H*W / patch**2, patch**2)`` tokens, row-major over the
    patches and within each."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, (h // patch) * (w // patch), c * patch * patch).contiguous()


def digit_patches(seed: int = 0) -> Split:
    """The 8x8 digits (the split of :func:`~.data.digits`) as 16 tokens of 2x2 pixels."""
    s = digits(seed, size=8)
    return Split(patches(s.x_train), s.y_train, patches(s.x_test), s.y_test)


class DigitTransformer(nn.Module):
    """See the module docstring; ``norm_first`` and ``activation`` as
    ``nn.TransformerEncoderLayer``'s, ``pool`` ``"mean"`` or ``"first"`` (the first token);
    ``causal``: each token attends to itself and the tokens before it (decoder-style)."""

    INPUT = (TOKENS, PATCH * PATCH)

    def __init__(self, width: int = 32, heads: int = 2, ffn: int = 64, layers: int = 2,
                 classes: int = 10, *, norm_first: bool = True, activation: str = "gelu",
                 pool: str = "mean", causal: bool = False, dropout: float = 0.0):
        super().__init__()
        if pool not in ("mean", "first"):
            raise ValueError(f"pool must be 'mean' or 'first', not {pool!r}")
        self.pool = pool
        self.embed = nn.Linear(PATCH * PATCH, width)
        self.pos = nn.Parameter(torch.randn(1, TOKENS, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, ffn, dropout, activation,
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)
        self.causal = causal
        mask = nn.Transformer.generate_square_subsequent_mask(TOKENS) if causal else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x) + self.pos
        x = self.encoder(x, mask=self.mask, is_causal=self.causal)
        x = x.mean(dim=1) if self.pool == "mean" else x[:, 0]
        return self.head(x)


class TokenTransformer(nn.Module):
    """The token task's encoder (see the module docstring): token ids ``(N, 16)`` in, logits out.

    One pre-norm layer and a mean-pool head: a sequence's label is the majority class of its few
    signal tokens wherever they stand, which attention and an average over the tokens count."""

    INPUT = (SEQ_LEN,)

    def __init__(self, width: int = 32, heads: int = 2, ffn: int = 64, layers: int = 1,
                 vocab: int = VOCAB, classes: int = CLASSES):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(1, SEQ_LEN, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, ffn, 0.0, "gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos
        return self.head(self.encoder(x).mean(dim=1))
