import os

import pytest
import torch

# Triton kernels run on CPU tensors through the interpreter when there is no GPU. This must be
# set before any @triton.jit function is defined, i.e. before smoot_ext is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "triton_blocks(**sizes): block sizes of smoot_ext.triton.mask.launch for the "
                   "Triton mask backend of the `op` fixture (ignored by the other backends)")


@pytest.fixture
def op(request, monkeypatch):
    """A backend of an op, set up for this test: parametrise it (indirectly) with cases.backends."""
    from cases import KNOBS, Runner

    backend = request.param
    if backend.setting is not None:
        monkeypatch.setenv(KNOBS[backend.op][backend.name][0], backend.setting)
    marker = request.node.get_closest_marker("triton_blocks")
    return Runner(backend, marker.kwargs if marker else {})
