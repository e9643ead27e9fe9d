"""Targets and splits for the estimators: :func:`one_hot`, :func:`train_val_split`.

The estimators take a user's images as tensors or arrays. The book's datasets, and the images
it prepares for pretrained ImageNet classifiers, live in the book's own package.
"""

from agop.data.splits import one_hot, train_val_split

__all__ = ["one_hot", "train_val_split"]
