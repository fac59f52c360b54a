"""textcnn: Kim (2014) convolutional networks for sentence classification."""

from textcnn.model import CONV_PADDINGS, MODES, TextCNN, TextCNNConfig, conv_max_over_time, pad_batch, wide_pad
from textcnn.predict import TextCNNClassifier
from textcnn.vectors import LoadedVectors, load_vectors, vectors_from_bert

__version__ = "0.1.0"

__all__ = ["CONV_PADDINGS", "wide_pad", "MODES", "TextCNN", "TextCNNConfig", "conv_max_over_time", "pad_batch",
           "TextCNNClassifier", "LoadedVectors", "load_vectors", "vectors_from_bert"]
