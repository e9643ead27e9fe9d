"""Data for the book: offline images, local-signal tasks, and torchvision's datasets.

* offline (no download, the quick profile): :func:`digits`, :func:`mnist_subset`,
  :func:`photograph`, :func:`photographs`, :func:`lfw_subset`;
* local-signal tasks: :func:`bars_in_noise`, :func:`digits_in_noise`, :func:`star_in_noise`;
* torchvision's datasets from their on-disk layout: :func:`load_dataset`;
* images for pretrained ImageNet classifiers: :func:`load_images`, :func:`preprocess`,
  :func:`image_files`, :func:`photograph_arrays`;
* targets and splits: :func:`one_hot`, :func:`train_val_split`;
* translation-invariant inputs whose non-Gaussianity is set by a gain at a fixed covariance:
  :func:`nonlinear_gaussian_process`, :func:`emergence_task`.
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
from agop.data.emergence import emergence_task, nonlinear_gaussian_process
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
from agop.data.tasks import (
    DEFAULT_FRAME,
    bars_in_noise,
    digits_in_noise,
    star_in_noise,
    star_mask,
)

__all__ = [
    "DATASETS",
    "DEFAULT_FRAME",
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
    "bars_in_noise",
    "data_root",
    "emergence_task",
    "nonlinear_gaussian_process",
    "digits",
    "mnist_subset",
    "digits_in_noise",
    "lfw_subset",
    "load_dataset",
    "one_hot",
    "photograph",
    "photographs",
    "read_split",
    "resize",
    "star_in_noise",
    "star_mask",
    "train_val_split",
]
