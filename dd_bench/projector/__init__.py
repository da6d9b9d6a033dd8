"""HeLlO's image-to-label projector (decoupled-methods.md §6, §7.3): a frozen backbone with low-rank adapters and a
linear head that produces a set's soft labels online, so the set stores the adapters and head instead of labels.

* :mod:`~dd_bench.projector.lora`: loralib adapters on a module's Linear and Conv2d layers, seeded;
* :mod:`~dd_bench.projector.backbone`: the backbones (a local open_clip, timm or torchvision checkpoint, one the
  suite pre-trains on other data, a frozen random one), their identity and their input adaptation;
* :mod:`~dd_bench.projector.projector`: the projector, its head initialisation, its stored tensors and bytes.
"""

from dd_bench.projector.backbone import BackboneConfig, BackboneKind, load_backbone
from dd_bench.projector.projector import Projector, build_projector, projector_bytes

__all__ = ["BackboneConfig", "BackboneKind", "Projector", "build_projector", "load_backbone", "projector_bytes"]
