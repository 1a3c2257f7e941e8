"""Every command-line program of the package except `msta_jax.main` and `msta_jax.predict`.

Each is `python -m msta_jax.tools.NAME`, a thin absl program over library functions of the floors
below (cli.py says how they run): build, probe, show and synthetic (datasets), splits (split files:
list, fetch, verify, generate, check), descriptions, summary, protocol_run (with protocol_aggregate and
demo_results, its library), demo_report, verify_viclip, derive_vocab.
"""
