"""Few-shot Something-Something v2: K training videos per class (ViFi-CLIP's split-1 K-shot lists).

174 classes; test: the 24777 validation videos, 2 clips x 3 crops; no horizontal flips (classes name
directions). Model selection on the built `heldout` split (training videos in no list of the
protocol), never on the test list. Recipe: the MSTA authors' logs (configs/base.py).
paper (ViCLIP-B/16, MSTA): 9.1 / 10.4 / 13.3 / 17.5 top-1 at K = 2 / 4 / 8 / 16.

Args (comma separated): shots=2|4|8|16 (default 16), plus backbone=viclip|clip, method=..., init=PATH,
seed=N, split_set=vifi|generated, recipe=msta_jax|authors (configs/video_base.py).

    python -m msta_jax.main --config=configs/ssv2_fewshot.py:shots=4 --workdir=runs/ssv2_fewshot_k4
    python -m msta_jax.main --config=configs/ssv2_fewshot.py:shots=4,backbone=clip,method=frame_average --workdir=...
    python launch/run_protocol.py --protocol=few_shot --dataset=ssv2 --workdir=runs/ssv2_fewshot   # all K
"""
from configs import video_base


def get_config(arg: str | None = None):
  return video_base.few_shot(arg, 'ssv2')
