"""msta_jax: MSTA (Multi-modal Spatio-Temporal Adapter) for video-language models in JAX/Flax."""
