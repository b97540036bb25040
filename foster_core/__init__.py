"""foster_core: dataset distillation for text-based sequential recommendation (FOSTER), as a plain library."""

from .data import DataConfig, DataError, Dataset, Split, leave_one_out, load_dataset
from .model import ModelConfig, TextSASRec
from .text_encoder import EncoderConfig, TextEncoder
from .training import TrainConfig, TrainResult, train_on_sequences, train_on_soft

__all__ = [
    "DataConfig", "DataError", "Dataset", "Split", "leave_one_out", "load_dataset",
    "ModelConfig", "TextSASRec", "EncoderConfig", "TextEncoder",
    "TrainConfig", "TrainResult", "train_on_sequences", "train_on_soft",
]
