"""genbench's domain classifiers as torch-fidelity feature extractors.

After ``import genbench`` (before or after ``import torch_fidelity``) torch-fidelity
knows ``genbench-mnist`` and ``genbench-fashion-mnist``::

    import genbench
    import torch_fidelity

    torch_fidelity.calculate_metrics(input1=dir1, input2=dir2, fid=True, isc=True, kid=True,
                                     feature_extractor="genbench-mnist", cuda=False)

torch-fidelity hands the extractor ``[B,3,H,W] uint8`` batches (every image file
converted to RGB by PIL). They are turned into canonical gray 28x28 images with
:func:`genbench.files.pixels.to_canonical_batch`, the conversion ``genbench eval`` applies
to files, so both tools score identical pixels with identical weights. Feature
names: ``features`` (penultimate layer; FID, KID, precision/recall) and ``logits``
(Inception Score).

The self-supervised lenses (:mod:`genbench.features.ssl`) are registered as
``genbench-ssl-mnist`` and ``genbench-ssl-fashion-mnist``: ``features`` only (the
encoder output behind ``fid_ssl``), so FID, KID and precision/recall, not IS.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import (
    FEATURE_EXTRACTORS_REGISTRY,
    register_feature_extractor,
)

from genbench.features.extractor import (
    DOMAIN_DATASETS,
    PREFIX,
    build_domain_net,
    extractor_name,
)
from genbench.features.ssl import SSL_DATASETS, SSL_PREFIX, build_ssl_net
from genbench.files.pixels import to_canonical_batch

FEATURE_LAYER = "features"
LOGITS_LAYER = "logits"


class GenbenchFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity wrapper of :class:`genbench.features.network.FeatureNet`.

    ``name`` selects the dataset (``genbench-mnist`` or ``genbench-fashion-mnist``).
    torch-fidelity passes all of ``calculate_metrics``' keyword arguments to the
    constructor; none of them changes this extractor, so they are ignored.
    """

    def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
        super().__init__(name, features_list)
        self.net = build_domain_net(extractor_name(name))

    @staticmethod
    def get_provided_features_list() -> tuple[str, str]:
        return FEATURE_LAYER, LOGITS_LAYER

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": LOGITS_LAYER, "fid": FEATURE_LAYER, "kid": FEATURE_LAYER, "prc": FEATURE_LAYER}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        features, logits = self.net(to_canonical_batch(images))
        out = {FEATURE_LAYER: features, LOGITS_LAYER: logits}
        return tuple(out[name] for name in self.features_list)


class GenbenchSSLFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity wrapper of :class:`genbench.features.ssl.SSLNet` (``genbench-ssl-<dataset>``)."""

    def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
        super().__init__(name, features_list)
        self.net = build_ssl_net(name)

    @staticmethod
    def get_provided_features_list() -> tuple[str]:
        return (FEATURE_LAYER,)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        if metric == "isc":
            raise ValueError("the SSL lens has no class logits, hence no Inception Score; use genbench-mnist for IS")
        return FEATURE_LAYER

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return (self.net.encode(to_canonical_batch(images)),)


def register_with_torch_fidelity() -> None:
    """Register every domain extractor (idempotent: torch-fidelity refuses duplicates)."""
    for dataset in DOMAIN_DATASETS:
        name = PREFIX + dataset
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, GenbenchFeatureExtractor)
    for dataset in SSL_DATASETS:
        name = SSL_PREFIX + dataset
        if name not in FEATURE_EXTRACTORS_REGISTRY:
            register_feature_extractor(name, GenbenchSSLFeatureExtractor)
