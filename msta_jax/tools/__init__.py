"""Command-line tools over the msta_jax library."""
