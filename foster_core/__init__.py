"""foster_core: dataset distillation for text-based sequential recommendation (FOSTER), as a plain library.

Layers, lowest first; a layer imports only the layers below it:

    core/      data, loaders, text encoder, model, training, evaluation, synthetic data, export, runtime
    methods/   the method registry and one module per method; the expert and its trajectory
    runs/      the evaluator (students), the run store, running a method as a run, jobs, resume, presets
    analysis/  projections for the map, dataset profiles, run progress, the comparison table
    app/       the Streamlit app's shared page code (the only code that imports Streamlit)
    cli.py     python -m foster_core
"""

from .core.data import DataConfig, DataError, Dataset, Split, leave_one_out
from .core.loaders import load_dataset
from .core.model import ModelConfig, TextSASRec
from .core.synthetic import SyntheticData
from .core.text_encoder import EncoderConfig, TextEncoder
from .core.training import TrainConfig, TrainResult, train_on_sequences, train_on_soft

__all__ = [
    "DataConfig", "DataError", "Dataset", "Split", "leave_one_out", "load_dataset",
    "ModelConfig", "TextSASRec", "SyntheticData", "EncoderConfig", "TextEncoder",
    "TrainConfig", "TrainResult", "train_on_sequences", "train_on_soft",
]
