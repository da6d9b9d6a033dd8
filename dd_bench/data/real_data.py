"""RealData: a labelled image dataset held as uint8 tensors, plus the transform into model space.

Images stay uint8 ``(N, C, H, W)`` (4x smaller than float32) and are converted batch by batch with
:meth:`RealData.to_model_space`, on whatever device the tensors live on. Model space is either
per-channel ``(x/255 - mean) / std`` or, when ``zca`` is set, ZCA whitening of ``x/255`` (MTT's convention:
no mean/std normalisation before ZCA).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from dd_bench.data.zca import ZCATransform


@dataclass
class RealData:
    name: str
    train_images: torch.Tensor  # (N, C, H, W) uint8
    train_labels: torch.Tensor  # (N,) int64 in [0, num_classes)
    test_images: torch.Tensor  # (M, C, H, W) uint8
    test_labels: torch.Tensor  # (M,) int64
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, in units of x/255
    std: tuple[float, ...]
    dsa_strategy: str  # DSA families for this dataset, e.g. "color_crop_cutout_flip_scale_rotate"
    zca: ZCATransform | None = None
    # Indices into the original training set when a validation split was carved out (None: full set).
    train_indices: torch.Tensor | None = None
    # The held-out validation split (uint8 images, int64 labels) when one was carved out: for selection and for
    # the accuracy recorded with teachers. Never part of the training tensors.
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    source: dict = field(default_factory=dict)  # where it was loaded from (root, layout, cache file)

    def __post_init__(self) -> None:
        for attr in ("train_images", "test_images"):
            t = getattr(self, attr)
            if t.dtype != torch.uint8 or t.dim() != 4:
                raise ValueError(f"RealData.{attr} must be uint8 (N, C, H, W); got {t.dtype} {tuple(t.shape)}")
        if len(self.train_images) != len(self.train_labels) or len(self.test_images) != len(self.test_labels):
            raise ValueError("RealData images and labels differ in length")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])

    @property
    def image_space(self) -> str:
        return "zca" if self.zca is not None else "mean_std"

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def fingerprint(self) -> str:
        """SHA-256 naming this data: the train and test tensors, the image space and the ZCA matrix's hash.

        Two loads of the same data give the same value; a validation split (other training tensors) changes it.
        The tensor hash is computed once per instance (a CIFAR-10 load hashes 180 MB).
        """
        from dd_bench.io import json_sha256, tensors_sha256

        if "_fingerprint_of_full_data" in self.__dict__:  # a without_test() copy names the data it came from
            return self.__dict__["_fingerprint_of_full_data"]
        tensor_sha = self.__dict__.get("_tensor_sha256")
        if tensor_sha is None:
            tensor_sha = tensors_sha256([self.train_images, self.train_labels, self.test_images, self.test_labels])
            self.__dict__["_tensor_sha256"] = tensor_sha
        return json_sha256({"tensors": tensor_sha, "image_space": self.image_space,
                            "zca": None if self.zca is None else self.zca.sha256})

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.train_labels, minlength=self.num_classes)

    def indices_of_class(self, c: int) -> torch.Tensor:
        return torch.nonzero(self.train_labels == c, as_tuple=False).flatten()

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> float32 model-space images of the same shape."""
        x = x.float().div_(255.0)
        if self.zca is not None:
            return self.zca.forward(x)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def to_pixel_space(self, x: torch.Tensor) -> torch.Tensor:
        """Model-space float images -> pixels in [0, 1] (clamped), for previews and exports."""
        if self.zca is not None:
            x = self.zca.inverse(x)
        else:
            mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
            x = x * std + mean
        return x.clamp(0.0, 1.0)

    def to(self, device: torch.device | str) -> RealData:
        moved = replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
            zca=self.zca.to(device) if self.zca is not None else None,
            val_images=None if self.val_images is None else self.val_images.to(device),
            val_labels=None if self.val_labels is None else self.val_labels.to(device),
        )
        for key in ("_tensor_sha256", "_fingerprint_of_full_data"):  # the same data: its fingerprint carries over
            if key in self.__dict__:
                moved.__dict__[key] = self.__dict__[key]
        return moved

    def without_test(self) -> RealData:
        """This data with an EMPTY test split, for distillation: a method cannot select anything on the test set
        because it never holds it. The fingerprint is the full data's (caches and resume keys are unchanged)."""
        fingerprint = self.fingerprint()
        out = replace(self, test_images=self.test_images[:0], test_labels=self.test_labels[:0])
        out.__dict__["_fingerprint_of_full_data"] = fingerprint
        return out

    def validation_view(self) -> RealData:
        """The validation split in the place of the test split (and no test data): what checkpoint selection
        scores on. Raises ValueError without a validation split."""
        if self.val_images is None or self.val_labels is None:
            raise ValueError("this data has no validation split")
        return replace(self, test_images=self.val_images, test_labels=self.val_labels)
