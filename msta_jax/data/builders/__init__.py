"""TFDS builders of real videos. Importing this package registers `video_folder` with TFDS.

  from msta_jax.data import builders
  b = builders.load(data_dir, 'hmdb51_vifi_few_shot')       # or tfds.builder('video_folder/<name>', ...)
  names = builders.protocol_splits(b.info, shots=16)       # {'train': 'train_shots16', 'test': 'test', ...}
  ds = b.as_dataset(split=names['train'])                  # video, label, path, fps, orig_frames
  b.info.metadata['splits'][names['train']]['classes']     # the class list the labels index
"""
from msta_jax.data.builders.video_folder import NAME
from msta_jax.data.builders.video_folder import VERSION
from msta_jax.data.builders.video_folder import VideoFolder
from msta_jax.data.builders.video_folder import VideoFolderConfig
from msta_jax.data.builders.video_folder import build
from msta_jax.data.builders.video_folder import config_name
from msta_jax.data.builders.video_folder import dataset_dir
from msta_jax.data.builders.video_folder import generic_config
from msta_jax.data.builders.video_folder import load
from msta_jax.data.builders.video_folder import protocol_splits
