"""Neural-network building blocks (``torch.nn``): Module and containers, layers, attention,
initialisation (``nn.init``), utilities (``nn.utils``), data parallel (``nn.parallel``) and the
stateless ``nn.functional``."""

from . import functional, init, parallel, utils
from .attention import (KVCache, LearnedPositionalEncoding, MultiHeadAttention,
                        SinusoidalPositionalEncoding, TransformerBlock, TransformerEncoderLayer)
from .layers import (GELU, CrossEntropyLoss, Dropout, Embedding, LayerNorm, Linear, MSELoss, ReLU,
                     Tanh)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = [
    "functional", "init", "parallel", "utils", "Module", "Parameter", "Sequential", "ModuleList",
    "ModuleDict",
    "Linear", "Embedding", "LayerNorm", "Dropout", "ReLU", "GELU", "Tanh", "MSELoss",
    "CrossEntropyLoss", "MultiHeadAttention", "TransformerEncoderLayer", "TransformerBlock",
    "SinusoidalPositionalEncoding", "LearnedPositionalEncoding", "KVCache",
]
