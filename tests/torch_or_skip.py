"""torch for the parity tests, or a skip of the test module that imports this where torch is absent.

torch is only a reference implementation here. The newest-stack run (launch/test_newest.sh) has none:
no CPU build of torch 2.13.0 exists for Python 3.12 on our machines, and the default Linux builds bring
multi-GB CUDA libraries. Where the lock installs it (Python 3.11, `bash launch/test.sh`) nothing skips.
"""
import pytest

torch = pytest.importorskip('torch', reason='needs torch, the parity reference (tests/torch_or_skip.py)')
