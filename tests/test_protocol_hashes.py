"""Every protocol's ``to_dict()`` is pinned: it is hashed into every record (dd_bench/results/keys.py) and written
into each record's ``extra.protocol``, so a refactor of the protocol classes must leave it byte for byte as it was.

Values recorded on 2026-12-08 from the protocols before the protocol became the training function (branch
r-protocol, from d386c73). Each is the SHA-256 (first 16 hex digits) of ``json.dumps(to_dict())`` in insertion
order, so key order counts as well as keys and values; a new protocol adds its own line here.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from dd_bench.eval import PROTOCOLS, custom_protocol, get_protocol
from dd_bench.io import json_sha256
from dd_bench.pipeline.robust import no_augmentation

# name -> (the protocol's to_dict, the to_dict of its no-augmentation variant scored by ARS)
PINNED = {
    "dc": ("1625b3c928ded530", "7b9e9fd867a9175e"),
    "kd": ("638c3f6186e2ce2c", "474688c5751e5b48"),
    "kd-cvdd": ("6ed565f198484cce", "86a5034a617d6966"),
    "kd-cvdd-eta2": ("c1570cec238bff79", "1e42e615e19fcbdd"),
    "kd-infer": ("2d00526c6ab7b951", "d9cab08aeb8cab8b"),
    "kd-infer-dyn": ("f513bab6d7f63a5f", "9a5c7a37a80f2f59"),
    "kd-quick": ("fe76786d7eed1134", "05855e0b18663e73"),
    "kd-rded": ("37ac27480561b0fb", "48a66e80bbb41fee"),  # v3 (RDED's best-during-training checks); v2: d174490b...
    "kd-sre2l-tiny": ("191dd1155037ea87", "93cc0dacae305d11"),
    "mtt": ("7575b96509089897", "f928237ad80cb9ec"),
    "mtt-datm": ("b3e51b249a04326f", "d86a4860ab3ec908"),
    "mtt-ftd-warm": ("1725c84fed995402", "1a1ce8a32b6854f0"),
    "mtt-fyi": ("b5eec87d671ba1ca", "0920a5feffae94b7"),
    "quick": ("9015ba1e61d1d5d7", "bc7ca5a3ce16cd05"),
}


def _ordered_sha(protocol) -> str:
    return hashlib.sha256(json.dumps(protocol.to_dict()).encode()).hexdigest()[:16]


def test_every_registered_protocol_is_pinned():
    assert sorted(PROTOCOLS.list()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_protocol_dict_is_unchanged(name):
    protocol = get_protocol(name)
    assert _ordered_sha(protocol) == PINNED[name][0]
    assert _ordered_sha(no_augmentation(protocol)) == PINNED[name][1]


def test_custom_protocol_dicts_and_key_order_are_unchanged():
    assert [_ordered_sha(custom_protocol(base, epochs=e)) for base, e in (("quick", 1), ("kd-quick", 1), ("dc", 2))] \
        == ["f6a0b67bdfbfcd2f", "278e59f354e5b2e0", "220677be1925f4a5"]
    # All of them through the sorted-key hash the record keys use (dd_bench.io.json_sha256), and the written order
    # of two representative dicts.
    assert json_sha256({name: get_protocol(name).to_dict() for name in PROTOCOLS.list()}) == \
        "b18de597ef05ff5924758aeaef481a35b5419f131ad8fe6eabd97561191c971f"  # kd-rded v3; before: be139eb7...
    assert list(get_protocol("dc").to_dict()) == [
        "name", "version", "epochs", "batch_size", "lr", "use_learned_lr", "momentum", "weight_decay", "decay_factor",
        "augment", "soft_label_loss", "test_batch_size", "ranked", "description", "augmented_epochs",
        "augmented_datasets", "augmented_models"]
    assert list(get_protocol("kd").to_dict())[-3:] == ["ranked", "description", "family"]
