"""lrlab: learning-rate schedule studies on GoogLeNet (Inception v1) image classifiers."""

__version__ = "0.1.0"
