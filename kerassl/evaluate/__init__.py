"""Measure encoders: features, kNN, linear probes, image-text retrieval.

`features` extracts; `knn`, `probe` and `retrieval` score; `kerassl.finetune`
builds on `features` too.
"""

from kerassl.evaluate.features import (
    ToFloatImages,
    check_labels,
    extract_features,
    is_dataset,
    resolve_jit_compile,
)
from kerassl.evaluate.knn import KNNMonitor, knn_accuracy, knn_accuracy_from_features, knn_predict
from kerassl.evaluate.probe import linear_probe
from kerassl.evaluate.retrieval import recall_at_k, retrieval_recall

__all__ = [
    "KNNMonitor",
    "ToFloatImages",
    "check_labels",
    "extract_features",
    "is_dataset",
    "knn_accuracy",
    "knn_accuracy_from_features",
    "knn_predict",
    "linear_probe",
    "recall_at_k",
    "resolve_jit_compile",
    "retrieval_recall",
]
