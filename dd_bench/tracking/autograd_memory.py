"""Activation memory measured on any device: the live bytes of tensors autograd saves for backward.

``torch.autograd.graph.saved_tensors_hooks`` wraps every tensor a graph saves (including the graphs built by
``create_graph=True``); a wrapper adds its bytes when saved and removes them when the graph that holds it is freed.
The peak is an upper bound of the activation memory (two saved references to one storage count twice) and is
comparable across implementations on the same problem, on the CPU as on a GPU, where the allocator's peak also
counts parameters, inputs and workspace.

>>> import torch
>>> with SavedTensorMeter() as meter:
...     x = torch.ones(1000, requires_grad=True)
...     y = (x * x).sum()
>>> meter.peak_bytes >= 4000
True
"""

from __future__ import annotations

import torch


class _Saved:
    __slots__ = ("tensor", "nbytes", "meter")

    def __init__(self, tensor: torch.Tensor, meter: SavedTensorMeter) -> None:
        self.tensor = tensor
        self.nbytes = tensor.numel() * tensor.element_size()
        self.meter = meter
        meter.live_bytes += self.nbytes
        meter.peak_bytes = max(meter.peak_bytes, meter.live_bytes)

    def __del__(self) -> None:
        self.meter.live_bytes -= self.nbytes


class SavedTensorMeter:
    """Context manager: ``peak_bytes`` of tensors saved for backward while it is active."""

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak_bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: _Saved(t, self), lambda s: s.tensor)

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
