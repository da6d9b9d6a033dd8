"""ZCA whitening as MTT uses it: ``kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True)`` fitted on the whole
training set of ``x/255`` images (no mean/std normalisation first).

Maths (kornia): flatten each image to D = C*H*W (C-major), mu = mean (1, D), Sigma = unbiased covariance,
U, S = svd(Sigma), T = U diag((S + eps)^-1/2) U^T; forward (x - mu) T, inverse y T^-1 + mu with
T^-1 = U diag((S + eps)^1/2) U^T. ``ZCATransform`` holds only the fitted tensors, so it can be saved as
safetensors, moved between devices and identified by the SHA-256 of its matrix (synthetic sets reference it).
kornia is imported inside :func:`fit_zca` only, so the package imports without it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from dd_bench.errors import UserError
from dd_bench.io import atomic_save_safetensors


def matrix_sha256(transform: torch.Tensor) -> str:
    """SHA-256 of the (D, D) matrix as float32 little-endian bytes, row-major."""
    a = transform.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False)
    return hashlib.sha256(a.tobytes()).hexdigest()


class ZCATransform:
    """A fitted ZCA whitening of (B, C, H, W) images in [0, 1]; forward and inverse run on the tensors' device."""

    def __init__(
        self,
        mean: torch.Tensor,  # (1, D) float32
        transform: torch.Tensor,  # (D, D) float32
        inverse_transform: torch.Tensor,  # (D, D) float32
        *,
        eps: float,
        image_shape: tuple[int, int, int],  # (C, H, W) with C*H*W == D
        sha256: str | None = None,
    ) -> None:
        d = int(np.prod(image_shape))
        if mean.shape != (1, d) or transform.shape != (d, d) or inverse_transform.shape != (d, d):
            raise ValueError(
                f"ZCA tensors do not match image shape {image_shape} (D={d}): mean {tuple(mean.shape)}, "
                f"transform {tuple(transform.shape)}, inverse {tuple(inverse_transform.shape)}"
            )
        self.mean, self.transform, self.inverse_transform = mean, transform, inverse_transform
        self.eps = float(eps)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.sha256 = sha256 if sha256 is not None else matrix_sha256(transform)

    @property
    def device(self) -> torch.device:
        return self.transform.device

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"ZCA fitted on images {self.image_shape}; got a batch of shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixels in [0, 1] -> whitened (B, C, H, W), float32 arithmetic, x's dtype out."""
        self._check(x)
        flat = x.reshape(len(x), -1).to(self.transform.dtype)
        return ((flat - self.mean) @ self.transform).reshape(x.shape).to(x.dtype)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Whitened (B, C, H, W) -> pixels (not clamped)."""
        self._check(x)
        flat = x.reshape(len(x), -1).to(self.inverse_transform.dtype)
        return (flat @ self.inverse_transform + self.mean).reshape(x.shape).to(x.dtype)

    __call__ = forward

    def to(self, device: torch.device | str) -> ZCATransform:
        return ZCATransform(
            self.mean.to(device),
            self.transform.to(device),
            self.inverse_transform.to(device),
            eps=self.eps,
            image_shape=self.image_shape,
            sha256=self.sha256,
        )

    def describe(self) -> dict:
        """What a synthetic set records to reference this transform."""
        return {"eps": self.eps, "sha256": self.sha256, "image_shape": list(self.image_shape)}

    def save(self, path: str | Path) -> None:
        tensors = {
            "mean": self.mean.detach().cpu().contiguous(),
            "transform": self.transform.detach().cpu().contiguous(),
            "inverse_transform": self.inverse_transform.detach().cpu().contiguous(),
        }
        meta = {"eps": repr(self.eps), "sha256": self.sha256, "image_shape": ",".join(map(str, self.image_shape))}
        atomic_save_safetensors(path, tensors, metadata=meta)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> ZCATransform:
        """Load and verify the matrix checksum recorded at save time."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in ("mean", "transform", "inverse_transform")}
        actual = matrix_sha256(t["transform"])
        if actual != meta.get("sha256"):
            raise UserError(f"{path}: ZCA matrix sha256 {actual} differs from the recorded {meta.get('sha256')}")
        shape = tuple(int(s) for s in meta["image_shape"].split(","))
        z = cls(t["mean"], t["transform"], t["inverse_transform"], eps=float(meta["eps"]), image_shape=shape)
        return z.to(device)


def fit_zca(images_float01: torch.Tensor, *, eps: float = 0.1) -> ZCATransform:
    """Fit on (N, C, H, W) float images in [0, 1] with kornia, on the images' device."""
    import kornia

    x = images_float01
    if not x.is_floating_point() or x.dim() != 4:
        raise TypeError(f"fit_zca expects float (N, C, H, W) images in [0, 1] (x/255); got {x.dtype} {tuple(x.shape)}")
    module = kornia.enhance.ZCAWhitening(eps=float(eps), compute_inv=True).fit(x.float())
    z = ZCATransform(
        module.mean_vector.detach().float(),
        module.transform_matrix.detach().float(),
        module.transform_inv.detach().float(),
        eps=eps,
        image_shape=tuple(x.shape[1:]),
    )
    # Cheap guard against a kornia convention change: our matmul must reproduce kornia's own output.
    probe = x[:8].float()
    if not torch.allclose(z.forward(probe), module(probe), rtol=1e-4, atol=1e-3):
        raise RuntimeError(f"ZCATransform.forward disagrees with kornia {kornia.__version__}'s ZCAWhitening")
    return z
