"""textcnn: Kim (2014) convolutional networks for sentence classification."""

__version__ = "0.1.0"
