"""Model zoo: DC/MTT networks for distillation and cross-architecture evaluation, plus a timm passthrough.

>>> from dd_bench.models import create_model, list_models
>>> model = create_model("convnet", num_classes=10, in_channels=1, image_size=(8, 8), width=16)
>>> model.classifier
Linear(in_features=16, out_features=10, bias=True)
"""

from dd_bench.models import alexnet, cifar_zoo, convnet, lenet, mlp, resnet, resnet_cifar, shufflenet_cifar, vgg  # noqa: F401  (registers)
from dd_bench.models.capabilities import embed, feature_dim, supports_vmap
from dd_bench.models.layers import UnsupportedResolution
from dd_bench.models.registry import MODELS, compatible_models, create_model, list_models, register_model

__all__ = [
    "MODELS",
    "UnsupportedResolution",
    "compatible_models",
    "create_model",
    "embed",
    "feature_dim",
    "list_models",
    "register_model",
    "supports_vmap",
]
