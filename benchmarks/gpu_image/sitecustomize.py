"""Makes the packages the lent GPU image lacks unimportable, to check the GPU suite's imports on a CPU:

    PYTHONPATH=benchmarks/gpu_image SUITE_SMOKE=1 PYTHON=.venv/bin/python bash benchmarks/gpu_suite.sh

Python imports `sitecustomize` from PYTHONPATH at start-up; a None entry in sys.modules makes
`import name` raise ImportError (ModuleNotFoundError), as if the package were not installed.
"""
import sys

ABSENT = ('tensorflow', 'tensorflow_datasets', 'clu', 'av', 'grain', 'array_record', 'ftfy')
for _name in ABSENT:
  sys.modules[_name] = None
