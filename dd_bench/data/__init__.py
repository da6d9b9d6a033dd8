"""Real data: the dataset registry, the loaders behind it, and what the rest of the suite consumes (RealData).

>>> from dd_bench.data import load_dataset
>>> real = load_dataset("digits")
>>> real.train_images.shape, real.test_images.shape
(torch.Size([1437, 1, 8, 8]), torch.Size([360, 1, 8, 8]))
"""

from dd_bench.data.catalog import DATASETS, DatasetSpec, get_dataset_spec
from dd_bench.data.ipc import check_ipc
from dd_bench.data.loading import DatasetNotFoundError, load_dataset
from dd_bench.data.real_data import RealData
from dd_bench.data.validation import split_validation
from dd_bench.data.zca import ZCATransform, fit_zca

__all__ = [
    "DATASETS",
    "DatasetNotFoundError",
    "DatasetSpec",
    "RealData",
    "ZCATransform",
    "check_ipc",
    "fit_zca",
    "get_dataset_spec",
    "load_dataset",
    "split_validation",
]
