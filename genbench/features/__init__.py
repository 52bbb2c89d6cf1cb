"""Domain feature extractors, their reference statistics, and torch-fidelity registration.

- :func:`train_extractor` trains the classifier of ``mnist`` / ``fashion-mnist``
  (weights committed in ``weights/``; :func:`extractor_sha256` identifies them).
- :func:`load_extractor` returns an :class:`Extractor` (genbench classifier or
  torch-fidelity's InceptionV3) mapping ``[N,1,28,28] uint8`` to features and logits.
- :func:`load_reference` gives the cached test-split statistics in that space.
- :mod:`.ssl` trains and loads the second, self-supervised lens (SimCLR) behind ``fid_ssl``.
- :func:`register_with_torch_fidelity` makes ``genbench-mnist``, ``genbench-fashion-mnist``
  and their ``genbench-ssl-*`` counterparts torch-fidelity feature extractors; ``import genbench``
  arranges for it to run as soon as torch-fidelity is imported. This package itself
  imports neither torch-fidelity nor torchvision.
"""

from genbench.features.extractor import (
    Extractor,
    Features,
    extractor_name,
    extractor_sha256,
    inception_weights_file,
    load_extractor,
    weights_path,
)
from genbench.features.network import FeatureNet, NetConfig
from genbench.features.reference import ReferenceStats, load_reference, reference_path
from genbench.features.train import (
    RECIPES,
    TrainConfig,
    TrainedExtractor,
    classifier_accuracy,
    train_extractor,
)

__all__ = [
    "RECIPES",
    "Extractor",
    "FeatureNet",
    "Features",
    "GenbenchFeatureExtractor",
    "GenbenchSSLFeatureExtractor",
    "NetConfig",
    "ReferenceStats",
    "TrainConfig",
    "TrainedExtractor",
    "classifier_accuracy",
    "extractor_name",
    "extractor_sha256",
    "inception_weights_file",
    "load_extractor",
    "load_reference",
    "reference_path",
    "register_with_torch_fidelity",
    "train_extractor",
    "weights_path",
]


def __getattr__(name: str) -> object:
    # The torch-fidelity wrapper imports torch-fidelity, and with it torchvision: only on demand.
    if name in ("GenbenchFeatureExtractor", "GenbenchSSLFeatureExtractor", "register_with_torch_fidelity"):
        from genbench.features import fidelity

        return getattr(fidelity, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
