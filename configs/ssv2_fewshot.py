"""Few-shot Something-Something v2 (split 1), K shots per class.

Args (comma separated): shots=2|4|8|16 (default 16), backbone=viclip|clip (default viclip).

    python -m msta_jax.main --config=configs/ssv2_fewshot.py:shots=4 --workdir=runs/ssv2_k4
    python -m msta_jax.tools.summary --config=configs/ssv2_fewshot.py
"""
from configs import base
from configs import common


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, shots=16, backbone='viclip')
  common.choice('shots', args.shots, (2, 4, 8, 16))
  common.choice('backbone', args.backbone, tuple(base.BACKBONES))
  c = base.get_config()
  c.model.name = base.BACKBONES[args.backbone]
  c.data.dataset = 'ssv2'
  c.data.shots = args.shots
  return c
