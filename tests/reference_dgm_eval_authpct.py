# A faithful copy of compute_authpct, the authenticity parity reference of tests/test_metrics_alpha_beta.py.
#
# Source: https://github.com/layer6ai-labs/dgm-eval, dgm_eval/metrics/authpct.py at commit
# 74c79f7527fbf38fdccfbac51f25d759bc02ab07 (the file's last change: d57a6d2d6bd613332dd21696994afff8efa78575),
# which credits https://github.com/marcojira/fls/blob/main/metrics/AuthPct.py. Every statement is as there.
#
# MIT License
#
# Copyright (c) 2023 Layer 6 AI
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.

import torch


def compute_authpct(train_feat, gen_feat):
    with torch.no_grad():
        train_feat = torch.tensor(train_feat, dtype=torch.float32)
        gen_feat = torch.tensor(gen_feat, dtype=torch.float32)
        real_dists = torch.cdist(train_feat, train_feat)

        # Hacky way to get it to ignore distance to self in nearest neighbor calculation
        real_dists.fill_diagonal_(float("inf"))
        gen_dists = torch.cdist(train_feat, gen_feat)

        real_min_dists = real_dists.min(axis=0)
        gen_min_dists = gen_dists.min(dim=0)

        # For every synthetic point, find its closest real point, d1
        # Then, for that real point, find its closest real point(not itself), d2
        # if d2<d1, then its authentic
        authen = real_min_dists.values[gen_min_dists.indices] < gen_min_dists.values
        authpct = (100 * torch.sum(authen) / len(authen)).item()
    return authpct
