"""The book's named datasets: offline images, and torchvision's datasets from their files.

* offline (no download, the quick profile): :func:`digits`, :func:`mnist_subset`,
  :func:`photograph`, :func:`photographs`, :func:`lfw_subset`, and the photographs for
  pretrained ImageNet classifiers, :func:`load_photographs`, :func:`photograph_arrays`
  (:mod:`agop_book.data.offline`);
* torchvision's datasets from their on-disk layout: :func:`load_dataset`, :func:`read_split`
  (:mod:`agop_book.data.datasets`, with the file readers of :mod:`agop_book.data.readers`);
* images for pretrained ImageNet classifiers, from files, a folder or arrays:
  :func:`load_images`, :func:`preprocess`, :func:`image_files` (:mod:`agop_book.data.images`).

Targets and splits are the library's: :mod:`agop.data`.

Examples:
    >>> from agop_book import data
    >>> X, y = data.digits(10, classes=[0, 1], device="cpu")
    >>> tuple(X.shape), sorted(set(y.tolist()))
    ((10, 1, 8, 8), [0, 1])
"""

from agop_book.data.datasets import (
    DATASETS,
    ENV_VAR,
    Dataset,
    DatasetNotAvailable,
    data_root,
    load_dataset,
    read_split,
)
from agop_book.data.images import (
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    image_files,
    load_images,
    preprocess,
)
from agop_book.data.offline import (
    PHOTOGRAPHS,
    digits,
    lfw_subset,
    load_photographs,
    mnist_subset,
    photograph,
    photograph_arrays,
    photographs,
    resize,
)
from agop_book.data.readers import DataFileError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "image_files",
    "load_images",
    "preprocess",
    "DATASETS",
    "ENV_VAR",
    "PHOTOGRAPHS",
    "DataFileError",
    "Dataset",
    "DatasetNotAvailable",
    "data_root",
    "digits",
    "lfw_subset",
    "load_dataset",
    "load_photographs",
    "mnist_subset",
    "photograph",
    "photograph_arrays",
    "photographs",
    "read_split",
    "resize",
]
