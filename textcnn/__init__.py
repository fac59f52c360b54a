"""textcnn: Kim (2014) convolutional networks for sentence classification."""

from textcnn.model import MODES, TextCNN, TextCNNConfig, conv_max_over_time, pad_batch
from textcnn.predict import TextCNNClassifier
from textcnn.vectors import LoadedVectors, load_vectors

__version__ = "0.1.0"

__all__ = ["MODES", "TextCNN", "TextCNNConfig", "conv_max_over_time", "pad_batch",
           "TextCNNClassifier", "LoadedVectors", "load_vectors"]
