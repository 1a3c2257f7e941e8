"""Test setup: 8 fake CPU devices and no TensorFlow in transformers, before anything imports JAX."""
import os

os.environ.setdefault('USE_TF', '0')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
if '--xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
