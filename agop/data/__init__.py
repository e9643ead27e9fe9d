"""Datasets: offline images, torchvision's datasets from their on-disk layout, splits.

* offline (no download, the quick profile): :func:`digits`, :func:`mnist_subset`,
  :func:`photograph`, :func:`photographs`, :func:`lfw_subset`;
* torchvision's datasets from their on-disk layout: :func:`load_dataset`;
* images for pretrained ImageNet classifiers: :func:`load_images`, :func:`preprocess`,
  :func:`image_files`, :func:`photograph_arrays`;
* targets and splits: :func:`one_hot`, :func:`train_val_split`.

The book's tasks (local signals, translation-invariant fields) live in its chapter modules
(``agop_book.ch05_deep_convrfm``, ``agop_book.ch07_other_accounts``).
"""

from agop.data.datasets import (
    DATASETS,
    ENV_VAR,
    Dataset,
    DatasetNotAvailable,
    data_root,
    load_dataset,
    read_split,
)
from agop.data.images import (
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    image_files,
    load_images,
    photograph_arrays,
    preprocess,
)
from agop.data.offline import (
    PHOTOGRAPHS,
    digits,
    lfw_subset,
    mnist_subset,
    photograph,
    photographs,
    resize,
)
from agop.data.readers import DataFileError
from agop.data.splits import one_hot, train_val_split

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "PHOTOGRAPHS",
    "DataFileError",
    "Dataset",
    "DatasetNotAvailable",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "image_files",
    "load_images",
    "photograph_arrays",
    "preprocess",
    "data_root",
    "digits",
    "mnist_subset",
    "lfw_subset",
    "load_dataset",
    "one_hot",
    "photograph",
    "photographs",
    "read_split",
    "resize",
    "train_val_split",
]
