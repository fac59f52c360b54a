"""minibert: a from-scratch, tested, tutorial-first BERT in pure PyTorch."""

__version__ = "0.1.0"
