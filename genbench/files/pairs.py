"""``genbench eval --reference``: pair two loaded image sets by file name (by position for two arrays)."""

from __future__ import annotations

import torch
from torch import Tensor

from genbench.errors import InputError
from genbench.files.images import MAX_LISTED, LoadedImages


def match_pairs(
    samples: LoadedImages, reference: LoadedImages, *, skip_bad: bool = False
) -> tuple[Tensor, Tensor, list[str]]:
    """Pair images by key (file stem; position when both are single array files).

    Returns ``(samples [M,1,28,28], reference [M,1,28,28], warnings)``. Unmatched
    images raise :class:`InputError`, or are dropped with a warning under ``skip_bad``.
    """
    if samples.single_array and reference.single_array:
        if len(samples) != len(reference):
            msg = f"--reference: {len(samples)} samples but {len(reference)} reference images (arrays pair by position)"
            if not skip_bad:
                raise InputError(msg)
            m = min(len(samples), len(reference))
            return samples.images[:m], reference.images[:m], [msg + f"; scored the first {m}"]
        return samples.images, reference.images, []
    for loaded, label in ((samples, "samples"), (reference, "reference")):
        seen: set[str] = set()
        dups = sorted({k for k in loaded.keys if k in seen or seen.add(k)})
        if dups:
            names = ", ".join(dups[:MAX_LISTED])
            raise InputError(f"--reference: {label} has several files named {names} (pairs match by name)")
    ref_index = {k: i for i, k in enumerate(reference.keys)}
    sample_keys = set(samples.keys)
    missing = [k for k in samples.keys if k not in ref_index]
    extra = [k for k in reference.keys if k not in sample_keys]
    out_warnings: list[str] = []
    if missing or extra:
        msg = (
            f"--reference: {len(missing)} sample(s) without a reference of the same name"
            + (f" ({', '.join(missing[:MAX_LISTED])}{', ...' if len(missing) > MAX_LISTED else ''})" if missing else "")
            + f", {len(extra)} reference(s) without a sample"
            + (f" ({', '.join(extra[:MAX_LISTED])}{', ...' if len(extra) > MAX_LISTED else ''})" if extra else "")
        )
        if not skip_bad:
            raise InputError(msg + " (use --skip-bad to score only the matched pairs)")
        out_warnings.append(msg + "; scored the matched pairs only")
    pairs = [(i, ref_index[k]) for i, k in enumerate(samples.keys) if k in ref_index]
    if not pairs:
        raise InputError("--reference: no sample has a reference image of the same name")
    si = torch.tensor([p[0] for p in pairs])
    ri = torch.tensor([p[1] for p in pairs])
    return samples.images[si], reference.images[ri], out_warnings
