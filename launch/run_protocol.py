#!/usr/bin/env python3
"""Runs every member run of a protocol and writes DIR/summary.{md,csv,png}: `python -m
msta_jax.tools.protocol_run`, runnable from the repository root without installing the package.

    python launch/run_protocol.py --protocol=few_shot|base_to_novel|zero_shot|supervised \
        --dataset=hmdb51|ucf101|ssv2|k400|synthetic --workdir=DIR [--methods=msta,frame_average] \
        [--shots=2,4,8,16] [--seeds=1,2,3] [--backbone=PATH] [--args=backbone=clip] [--dry_run] \
        [--config.KEY=VALUE ...]

docs/protocols.md explains each protocol and how its numbers are aggregated.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('USE_TF', '0')  # transformers must not import TensorFlow.

if __name__ == '__main__':
  from msta_jax.tools import cli, protocol_run
  cli.run(protocol_run.main)
