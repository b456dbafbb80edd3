"""Measure encoders: features, kNN, linear probes, image-text retrieval."""

from kerassl.evaluate.knn import (
    KNNMonitor,
    ToFloatImages,
    check_labels,
    extract_features,
    is_dataset,
    knn_accuracy,
    knn_accuracy_from_features,
    knn_predict,
    linear_probe,
)
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
    "retrieval_recall",
]
