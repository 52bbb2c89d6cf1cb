"""Score a generator (or a set of images): choose metrics by capability, run them, return flat keys.

The harness calls :func:`evaluate_model`; ``genbench eval`` calls
:func:`evaluate_samples`. Both follow the same path for sample quality, a loop over the
registered metric groups (:func:`genbench.metrics.metric_groups`, :func:`compute_metric_groups`):

1. samples are quantized to ``[N,1,28,28] uint8`` (``round(x*255)``) before anything
   else, so in-process numbers equal those of ``genbench eval`` on saved PNGs;
2. features and logits are extracted **once**;
3. FID (+ bootstrap interval), KID (+ std), IS (+ std), precision, recall, density,
   coverage and ``confident_fraction`` are computed from those tensors against the
   cached statistics of the test split's reference part (``test-reference``,
   :mod:`genbench.data.splits`; :func:`genbench.features.load_reference`);
4. ``fid_ssl``, ``precision_ssl`` and ``recall_ssl`` repeat FID, precision and recall in a
   second feature space, the dataset's self-supervised encoder (:mod:`genbench.features.ssl`),
   whatever ``features`` is, against that lens's cached statistics of the same split;
5. ``fid_inf`` (FD∞, :mod:`genbench.metrics.fid_inf`) extrapolates FID to infinitely
   many samples; ``classes_covered``, ``class_kl`` and ``fid_intra``
   (:mod:`genbench.metrics.classes`) read the domain classifier's classes;
6. ``copy_fraction`` compares the samples' nearest-training-image distances in pixels
   with those of the reference images (:mod:`genbench.metrics.copying`), and
   ``copy_ct``/``copy_ct_p`` test the same question with Meehan et al.'s C_T
   (:mod:`genbench.metrics.copy_test`).

Model-only metrics follow the declared capabilities: ``nll_bpd`` (LOG_LIKELIHOOD),
``psnr``/``mse``/``ssim`` (RECONSTRUCT) and ``completion_psnr``/``completion_mse``
(COMPLETE). A metric that does not apply is ``None`` with a reason in
``null_reasons``. For a fixed seed everything is deterministic on the CPU.
"""

from genbench.evaluate.model import draw_samples, evaluate_model, log_likelihoods
from genbench.evaluate.samples import (
    compute_metric_groups,
    copy_metrics,
    distribution_metrics,
    evaluate_samples,
    sample_speed,
    ssl_metrics,
)
from genbench.evaluate.settings import (
    COMPLETION_KEYS,
    COPY_KEYS,
    DISTRIBUTION_KEYS,
    LIKELIHOOD_KEYS,
    METRIC_GROUPS,
    PIXEL_GROUPS,
    RECONSTRUCTION_KEYS,
    SSL_KEYS,
    EvalConfig,
    EvalResult,
)

__all__ = [
    "COMPLETION_KEYS", "COPY_KEYS", "DISTRIBUTION_KEYS", "LIKELIHOOD_KEYS", "METRIC_GROUPS", "PIXEL_GROUPS",
    "RECONSTRUCTION_KEYS", "SSL_KEYS", "EvalConfig", "EvalResult", "compute_metric_groups", "copy_metrics",
    "distribution_metrics", "draw_samples", "evaluate_model", "evaluate_samples", "log_likelihoods", "sample_speed",
    "ssl_metrics",
]
