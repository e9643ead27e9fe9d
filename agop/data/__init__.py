"""Data for the estimators: a user's own images, targets and splits.

* images for pretrained ImageNet classifiers, from files, a folder or arrays:
  :func:`load_images`, :func:`preprocess`, :func:`image_files`;
* targets and splits: :func:`one_hot`, :func:`train_val_split`.

The book's named datasets (scikit-learn's digits, scikit-image's photographs, MNIST, CIFAR and
the other torchvision datasets read from their files) live in the book's own package.
"""

from agop.data.images import (
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    image_files,
    load_images,
    preprocess,
)
from agop.data.splits import one_hot, train_val_split

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "image_files",
    "load_images",
    "one_hot",
    "preprocess",
    "train_val_split",
]
