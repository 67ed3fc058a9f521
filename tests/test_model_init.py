"""A seeded model starts from the same weights as it always has.

`data/model_init_digests.json` holds a digest of the seeded state_dict (and the layer list) of
every builder x norm x pooling x head at one small size; a refactor of the builders that
creates layers in another order, or with another initialisation, changes a digest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

from tsgd_core.training.models import build_model

DIGESTS = Path(__file__).with_name("data") / "model_init_digests.json"
VARIANTS = itertools.product(
    ("convnet3d", "r2plus1d", "c3d"),
    ("batch", "instance", "none"),
    ("avg", "max"),
    ("flatten", "max", "avg"),
)


def model_digest(name: str, norm: str, pooling: str, head: str) -> str:
    """sha256 of a seed-3 model's parameter names, values and layer list."""
    model = build_model(
        name, 5, (3, 8, 16, 16), width=8, depth=3, norm=norm, pooling=pooling, head=head, seed=3
    )
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.numpy().tobytes())
    digest.update(repr(model).encode())
    return digest.hexdigest()


def test_seeded_models_start_from_the_recorded_weights():
    expected = json.loads(DIGESTS.read_text())
    current = {"/".join(v): model_digest(*v) for v in VARIANTS}
    assert current.keys() == expected.keys()
    changed = [name for name in expected if current[name] != expected[name]]
    assert not changed, f"seeded initialisation changed for {changed}"
