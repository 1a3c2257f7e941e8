"""Few-shot UCF101: K training videos per class (ViFi-CLIP's split-1 K-shot lists).

101 classes; test: split 1's 3783 videos (val1.txt), 5 clips x 3 crops.
Model selection on the built `heldout` split (training videos in no list of the protocol), never on
the test list. Recipe: the MSTA authors' logs (configs/base.py).
paper (ViCLIP-B/16, MSTA): 86.1 / 90.2 / 92.7 / 94.8 top-1 at K = 2 / 4 / 8 / 16.

Args (comma separated): shots=2|4|8|16 (default 16), plus backbone=viclip|clip, method=..., init=PATH,
seed=N, split_set=vifi|generated, recipe=msta_jax|authors (configs/video_base.py).

    python -m msta_jax.main --config=configs/ucf_fewshot.py:shots=4 --workdir=runs/ucf_fewshot_k4
    python -m msta_jax.main --config=configs/ucf_fewshot.py:shots=4,backbone=clip,method=frame_average --workdir=...
    python launch/run_protocol.py --protocol=few_shot --dataset=ucf101 --workdir=runs/ucf_fewshot   # all K
"""
from configs import video_base


def get_config(arg: str | None = None):
  return video_base.few_shot(arg, 'ucf101')
