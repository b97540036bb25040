"""The core: data and loaders, the text encoder, the text-SASRec, training, evaluation, synthetic data and
its exports, runtime (devices, seeds, memory), atomic files and config dicts. Imports nothing above it."""
