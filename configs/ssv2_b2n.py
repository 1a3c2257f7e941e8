"""Base-to-novel Something-Something v2: train on 16 shots of each base class, test on base and novel classes.

87 base / 87 novel classes; test: base_val 17562 and novel_val 7215 videos, 2 clips x 3 crops; no horizontal
flips (classes name directions). Each test list is scored against its own class list (local ids);
results.json adds the harmonic mean of the two top-1s. `seed` (1, 2 or 3, default 1) picks ViFi-CLIP's
training list fs_base_s<seed> and is the training seed; the literature's number is HM(mean base, mean novel)
over the three seeds (launch/run_protocol.py computes it). Model selection on the built `heldout` split
(base-class training videos in no list of the protocol). Recipe: the MSTA authors' logs (configs/base.py).
paper (ViCLIP-B/16, MSTA): HM 18.9.

Args (comma separated): seed=1|2|3, plus backbone=viclip|clip, method=..., init=PATH,
split_set=vifi|generated, recipe=msta_jax|authors (configs/video_base.py).

    python -m msta_jax.main --config=configs/ssv2_b2n.py:seed=2 --workdir=runs/ssv2_b2n_s2
    python launch/run_protocol.py --protocol=base_to_novel --dataset=ssv2 --workdir=runs/ssv2_b2n   # seeds 1..3
"""
from configs import video_base


def get_config(arg: str | None = None):
  return video_base.base_to_novel(arg, 'ssv2')
