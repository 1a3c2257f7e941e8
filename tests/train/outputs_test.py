"""What adapters.safetensors records: the adapter configs as to_dict(), read back by the same registry."""
import json

from configs import base, methods
from msta_jax import models
from msta_jax.train import from_config, outputs


def test_adapters_metadata_reads_back_into_the_same_model():
  for method in ('msta', 'lora', 'adaptformer', 'frame_average'):
    config = base.get_config()
    methods.apply(config, method)
    config.model.name = 'tiny_viclip'
    model = from_config.build_model(config)
    meta = json.loads(json.dumps(outputs.adapters_metadata(config, model)))
    again = models.get_model(models.ModelConfig.from_dict(meta['model']), **models.adapter_configs(meta))
    assert (again.msta, again.lora, again.adaptformer) == (model.msta, model.lora, model.adaptformer), method
    assert meta['method'] == method and all('enabled' not in (meta[k] or {}) for k in models.ADAPTERS)
