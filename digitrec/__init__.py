"""digitrec: handwritten digit recognition that reads canvas drawings as well as MNIST.

Importing digitrec never imports TensorFlow; only training and the Keras fallback do.
"""

from digitrec.errors import (
    DataUnavailableError,
    DigitrecError,
    ModelError,
    PermissionDeniedError,
    StoreError,
    TrainingBusyError,
)
from digitrec.inference import Prediction, Recognizer
from digitrec.preprocess import preprocess

__all__ = [
    "DataUnavailableError", "DigitrecError", "ModelError", "PermissionDeniedError", "Prediction",
    "Recognizer", "StoreError", "TrainingBusyError", "preprocess",
]
