"""The run-time shim for official code: a ``sitecustomize`` module put first on ``PYTHONPATH`` (:func:`write_shim`),
built from named parts, each an environment adaptation (never the algorithm) and each described, for the entry's
``official.adaptations``, in :data:`ADAPTATION_NOTES`. ``seed`` is always on: the official scripts seed nothing.
"""

from __future__ import annotations

from pathlib import Path

# The shim's parts, by adaptation name; ``seed`` is always on. Each is environment, never algorithm.
SHIM_PARTS = {
    "seed": (
        "import os, random\n"
        "_seed = int(os.environ.get('LEDGER_SEED', '0'))\n"
        "random.seed(_seed)\n"
        "try:\n    import numpy; numpy.random.seed(_seed)\nexcept ImportError:\n    pass\n"
        "try:\n    import torch; torch.manual_seed(_seed)\nexcept ImportError:\n    pass\n"
    ),
    # buffer.py snapshots with p.detach().cpu(): a copy on a GPU, the live tensor on a CPU (every saved epoch would
    # alias the final weights). A copy on CPU tensors restores what the code means on the device it was written for.
    "copying_cpu": (
        "import torch\n"
        "_cpu = torch.Tensor.cpu\n"
        "def _copying_cpu(self, *args, **kwargs):\n"
        "    out = _cpu(self, *args, **kwargs)\n"
        "    return out.clone() if out.data_ptr() == self.data_ptr() else out\n"
        "torch.Tensor.cpu = _copying_cpu\n"
    ),
    # DatasetCondensation's DiffAugment (copied into MTT and DATM) writes a tensor from a view of itself
    # (utils.py rand_cutout/rand_crop with Siamese params: ``offset_x[:] = offset_x[0]``), which the torch of 2021 ran
    # and today's refuses ("some elements ... refer to a single memory location"). Cloning an overlapping source
    # first gives what the old torch computed; every other assignment is untouched.
    "setitem_overlap": (
        "import torch\n"
        "_setitem = torch.Tensor.__setitem__\n"
        "def _setitem_clone_overlap(self, key, value):\n"
        "    if isinstance(value, torch.Tensor) and value.numel() and self.numel() \\\n"
        "            and value.untyped_storage().data_ptr() == self.untyped_storage().data_ptr():\n"
        "        value = value.clone()\n"
        "    return _setitem(self, key, value)\n"
        "torch.Tensor.__setitem__ = _setitem_clone_overlap\n"
    ),
    # networks.py flattens with ``out.view(out.size(0), -1)``; today's CPU kernels can hand back a non-contiguous
    # (channels-last) feature map after the DSA-augmented batch, which ``view`` refuses and the torch of 2021 never
    # produced. Only where ``view`` raises does this fall back to ``reshape`` (same values, a copy).
    "view_fallback": (
        "import torch\n"
        "_view = torch.Tensor.view\n"
        "def _view_or_reshape(self, *shape, **kwargs):\n"
        "    try:\n"
        "        return _view(self, *shape, **kwargs)\n"
        "    except RuntimeError as err:\n"
        "        if 'view size is not compatible' not in str(err):\n"
        "            raise\n"
        "        return self.reshape(*shape)\n"
        "torch.Tensor.view = _view_or_reshape\n"
    ),
    # The official loaders read torchvision's pickled CIFAR batches; the data here is an ImageFolder tree
    # (<root>/train/<class>/*.png, <root>/test/<class>/*.png: the same pixels, lossless). The class folders sort
    # into CIFAR's label order (airplane ... truck), so labels are unchanged.
    "cifar_imagefolder": (
        "import os\n"
        "import torchvision.datasets as _datasets\n"
        "def _image_folder(name):\n"
        "    def make(root, train=True, download=False, transform=None, target_transform=None):\n"
        "        return _datasets.ImageFolder(os.path.join(root, 'train' if train else 'test'), transform=transform,\n"
        "                                     target_transform=target_transform)\n"
        "    make.__name__ = name\n"
        "    return make\n"
        "_datasets.CIFAR10 = _image_folder('CIFAR10')\n"
        "_datasets.CIFAR100 = _image_folder('CIFAR100')\n"
    ),
    # distill.py imports wandb, logs to it every iteration and reads its own arguments back from wandb.config._items.
    # A stand-in module (never the network service): init keeps the config, log appends the scalars it is given to
    # $LEDGER_WANDB_LOG as JSON lines (how the harness learns the learned lr at the budgeted iteration, which
    # distill.py logs but never saves), media objects are dropped; anything else is a no-op.
    "wandb_noop": (
        "import json as _ljson, os as _los, sys as _lsys, types as _ltypes\n"
        "def _ledger_wandb():\n"
        "    mod = _ltypes.ModuleType('wandb')\n"
        "    mod.__doc__ = 'ledger no-op wandb (scripts/ledger/shims.py)'\n"
        "    class Config:\n"
        "        def __init__(self):\n"
        "            self._items = {}\n"
        "        def update(self, values, allow_val_change=False):\n"
        "            self._items.update(values if isinstance(values, dict) else vars(values))\n"
        "        def __getitem__(self, key):\n"
        "            return self._items[key]\n"
        "    class Run:\n"
        "        def __init__(self, name):\n"
        "            self.name = self.id = name\n"
        "    class Media:\n"
        "        def __init__(self, *args, **kwargs):\n"
        "            pass\n"
        "    def scalar(v):\n"
        "        try:\n"
        "            if isinstance(v, (bool, int, float, str)) or v is None:\n"
        "                return v\n"
        "            if hasattr(v, 'numel') and v.numel() == 1 or hasattr(v, 'item') and getattr(v, 'ndim', 1) == 0:\n"
        "                return v.item()\n"
        "        except Exception:\n"
        "            pass\n"
        "        return type(v).__name__\n"
        "    def init(*args, config=None, name=None, **kwargs):\n"
        "        if config is not None:\n"
        "            mod.config.update(config)\n"
        "        mod.run = Run(name or _los.environ.get('LEDGER_WANDB_RUN', 'ledger'))\n"
        "        return mod.run\n"
        "    def log(data, step=None, commit=None, **kwargs):\n"
        "        path = _los.environ.get('LEDGER_WANDB_LOG')\n"
        "        if path:\n"
        "            row = {'step': step, **{k: scalar(v) for k, v in data.items()}}\n"
        "            with open(path, 'a') as handle:\n"
        "                handle.write(_ljson.dumps(row) + '\\n')\n"
        "    def noop(*args, **kwargs):\n"
        "        return None\n"
        "    def missing(name):\n"
        "        if name.startswith('__'):\n"
        "            raise AttributeError(name)\n"
        "        return noop\n"
        "    mod.init, mod.log, mod.finish, mod.__getattr__ = init, log, noop, missing\n"
        "    mod.config, mod.run = Config(), None\n"
        "    mod.Histogram = type('Histogram', (Media,), {})\n"
        "    mod.Image = type('Image', (Media,), {})\n"
        "    return mod\n"
        "_lsys.modules['wandb'] = _ledger_wandb()\n"
    ),
    # distill.py saves the set after iteration N's evaluation only when N % 1000 == 0 or its in-loop accuracy (one
    # network, on the test set) beats the one at 0; dd-bench's side is the set after exactly N updates, always. The
    # loop logs {"Progress": it} first thing in iteration it, before that iteration's evaluation and update, so at
    # it = $LEDGER_CAPTURE_STEP its local image_syn, label_syn and syn_lr are the set after exactly N updates: they
    # are read there (the caller's frame, read only) and saved to $LEDGER_CAPTURE_DIR. After wandb_noop.
    "set_capture": (
        "def _ledger_capture():\n"
        "    import sys, torch\n"
        "    wandb, step_at = sys.modules['wandb'], int(_los.environ['LEDGER_CAPTURE_STEP'])\n"
        "    logged = wandb.log\n"
        "    def log(data, step=None, commit=None, **kwargs):\n"
        "        if 'Progress' in data and step == step_at:\n"
        "            frame = sys._getframe(1).f_locals\n"
        "            _los.makedirs(_los.environ['LEDGER_CAPTURE_DIR'], exist_ok=True)\n"
        "            for name in ('image_syn', 'label_syn', 'syn_lr'):\n"
        "                torch.save(frame[name].detach().cpu().clone(),\n"
        "                           _los.path.join(_los.environ['LEDGER_CAPTURE_DIR'], name + '.pt'))\n"
        "            with open(_los.path.join(_los.environ['LEDGER_CAPTURE_DIR'], 'step.txt'), 'w') as f:\n"
        "                f.write(str(step))\n"
        "        return logged(data, step=step, commit=commit, **kwargs)\n"
        "    wandb.log = log\n"
        "if _los.environ.get('LEDGER_CAPTURE_STEP'):\n"
        "    _ledger_capture()\n"
    ),
    # distill.py moves the synthetic images to the GPU with ``image_syn.cuda()`` before saving them, which raises
    # where there is none. Without CUDA, Tensor.cuda returns a copy on the CPU (what .cuda() gives on a GPU: a copy).
    "cuda_copy": (
        "import torch\n"
        "_tensor_cuda = torch.Tensor.cuda\n"
        "def _cuda_or_copy(self, *args, **kwargs):\n"
        "    return _tensor_cuda(self, *args, **kwargs) if torch.cuda.is_available() else self.clone()\n"
        "torch.Tensor.cuda = _cuda_or_copy\n"
    ),
    # The decoupled repositories (RDED, SRe2L) put every module and tensor on the GPU: Module.cuda() (nn.DataParallel(
    # model).cuda(), criterion.cuda()), Tensor.to("cuda") and torch.randn(..., device="cuda"). Where CUDA is absent the
    # module stays where it is and those tensors are made on the CPU; Tensor.cuda() is cuda_copy's (used beside it).
    "cuda_on_cpu": (
        "import torch\n"
        "if not torch.cuda.is_available():\n"
        "    def _is_cuda(d):\n"
        "        return (isinstance(d, str) and d.startswith('cuda')) or (isinstance(d, torch.device) and "
        "d.type == 'cuda')\n"
        "    torch.nn.Module.cuda = lambda self, *args, **kwargs: self\n"
        "    _tensor_to = torch.Tensor.to\n"
        "    def _to_cpu(self, *args, **kwargs):\n"
        "        args = tuple('cpu' if _is_cuda(a) else a for a in args)\n"
        "        if _is_cuda(kwargs.get('device')):\n"
        "            kwargs['device'] = 'cpu'\n"
        "        return _tensor_to(self, *args, **kwargs)\n"
        "    torch.Tensor.to = _to_cpu\n"
        "    _randn = torch.randn\n"
        "    def _randn_cpu(*args, **kwargs):\n"
        "        if _is_cuda(kwargs.get('device')):\n"
        "            kwargs['device'] = 'cpu'\n"
        "        return _randn(*args, **kwargs)\n"
        "    torch.randn = _randn_cpu\n"
    ),
    # SRe2L's CIFAR scripts build teacher and student with torchvision.models.get_model("resnet18", num_classes=100)
    # and then swap the stem (conv1 3x3, maxpool Identity). The decoupled pairs' teacher and student are the conv3
    # (RDED's ConvNet: width 128, depth 3, batch norm, avg pooling; dd-bench's convnet_bn, the same layers), so the
    # factory returns it for $LEDGER_NUM_CLASSES classes, and the stem assignments, which a conv3 has no layer for,
    # are dropped. The model is constructed here; the algorithm around it is the script's.
    "conv3_model": (
        "import os as _c3_os\n"
        "import torchvision.models as _c3_models\n"
        "_c3_get_model = _c3_models.get_model\n"
        "def _c3_factory(name, **config):\n"
        "    if name != 'resnet18':\n"
        "        return _c3_get_model(name, **config)\n"
        "    from dd_bench.models import create_model\n"
        "    net = create_model('convnet_bn', num_classes=int(_c3_os.environ['LEDGER_NUM_CLASSES']), in_channels=3,\n"
        "                       image_size=(32, 32), width=128, depth=3)\n"
        "    class Conv3(type(net)):\n"
        "        def __setattr__(self, key, value):\n"
        "            if key not in ('conv1', 'maxpool'):\n"
        "                super().__setattr__(key, value)\n"
        "    net.__class__ = Conv3\n"
        "    return net\n"
        "_c3_models.get_model = _c3_factory\n"
    ),
    # Timing only (the experts pair's like-for-like speed figure): wraps utils.epoch, once buffer.py imports it, with
    # a clock per mode ('train' / 'test') and writes the sums to $LEDGER_EPOCH_TIMES at exit. A meta-path finder,
    # because buffer.py binds ``epoch`` by ``from utils import ...`` before any of our code could wrap it later.
    "epoch_timer": (
        "import atexit, importlib.abc, importlib.machinery, json, os, sys, time\n"
        "_epoch_times = {}\n"
        "class _EpochTimer(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name != 'utils':\n"
        "            return None\n"
        "        sys.meta_path.remove(self)\n"
        "        spec = importlib.machinery.PathFinder.find_spec(name, path)\n"
        "        if spec is None:\n"
        "            return None\n"
        "        run = spec.loader.exec_module\n"
        "        def exec_module(module):\n"
        "            run(module)\n"
        "            inner = module.epoch\n"
        "            def epoch(mode, *args, **kwargs):\n"
        "                start = time.perf_counter()\n"
        "                try:\n"
        "                    return inner(mode, *args, **kwargs)\n"
        "                finally:\n"
        "                    total = _epoch_times.setdefault(mode, {'seconds': 0.0, 'calls': 0})\n"
        "                    total['seconds'] += time.perf_counter() - start\n"
        "                    total['calls'] += 1\n"
        "            module.epoch = epoch\n"
        "        spec.loader.exec_module = exec_module\n"
        "        return spec\n"
        "sys.meta_path.insert(0, _EpochTimer())\n"
        "def _dump_epoch_times():\n"
        "    if os.environ.get('LEDGER_EPOCH_TIMES'):\n"
        "        with open(os.environ['LEDGER_EPOCH_TIMES'], 'w') as handle:\n"
        "            json.dump(_epoch_times, handle)\n"
        "atexit.register(_dump_epoch_times)\n"
    ),
}
ADAPTATION_NOTES = {
    "seed": "sitecustomize seeds random, numpy and torch from LEDGER_SEED before the script runs (it seeds nothing)",
    "setitem_overlap": "Tensor.__setitem__ clones a source that shares the target's storage (today's torch refuses "
                       "utils.py's `offset_x[:] = offset_x[0]`, which the torch it was written for ran)",
    "view_fallback": "Tensor.view falls back to reshape where it raises on a non-contiguous input (networks.py's "
                     "flatten after today's CPU kernels; same values)",
    "cifar_imagefolder": "data loading: torchvision.datasets.CIFAR10/100 read the ImageFolder tree at --data_path "
                         "(train/ and test/; the same pixels as the pickled batches, labels in the same order)",
    "copying_cpu": "Tensor.cpu returns a copy for a CPU tensor (on a GPU it already copies; see the issue's trap)",
    "wandb_noop": "a no-op wandb module (init keeps the config that distill.py reads back from wandb.config._items; "
                  "log appends the logged scalars to a local JSON-lines file; Histogram/Image are dropped; no "
                  "network)",
    "set_capture": "the set after exactly N updates: the wandb stand-in's log, called with {'Progress': N} at the "
                   "top of iteration N (before its evaluation and update), reads distill.py's image_syn, label_syn "
                   "and syn_lr from the calling frame and saves copies (distill.py itself saves the set at N only "
                   "when N % 1000 == 0 or its in-loop test accuracy beats the one at 0); read only, no value changed",
    "cuda_copy": "Tensor.cuda returns a CPU copy where CUDA is absent (distill.py calls image_syn.cuda() before "
                 "saving the images)",
    "cuda_on_cpu": "where CUDA is absent, Module.cuda leaves the module on the CPU and Tensor.to('cuda') / "
                   "torch.randn(device='cuda') make CPU tensors (the scripts put everything on the GPU); with "
                   "cuda_copy for Tensor.cuda",
    "epoch_timer": "timing only: utils.epoch is wrapped with a clock per mode (train / test), summed to "
                   "$LEDGER_EPOCH_TIMES at exit (same calls, same values)",
    "conv3_model": "model construction: torchvision.models.get_model('resnet18', num_classes=100) returns the conv3 "
                   "(ConvNet width 128, depth 3, batch norm, avg pooling: dd-bench's convnet_bn, RDED's conv3 layers) "
                   "for $LEDGER_NUM_CLASSES classes, and the ResNet stem swaps (conv1, maxpool), which a conv3 has "
                   "no layer for, are dropped; the teacher's weights are the pair's (its state dict file)",
}


def write_shim(directory: Path, parts: tuple[str, ...]) -> Path:
    """A ``sitecustomize.py`` with the named parts (``seed`` first); returns the directory for ``PYTHONPATH``."""
    directory.mkdir(parents=True, exist_ok=True)
    body = ["# Written by scripts/ledger/shims.py: run-time environment for an official pipeline.\n"]
    body += [SHIM_PARTS[name] for name in ("seed", *[p for p in parts if p != "seed"])]
    (directory / "sitecustomize.py").write_text("".join(body))
    return directory
