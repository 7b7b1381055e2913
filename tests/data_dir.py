"""Where the tests find torchvision datasets: ``$SMOOT_DATA_DIR`` (``.ci/run`` sets it), as the
trainer does; tests that need MNIST skip where it is not there."""
from pathlib import Path

import pytest

from smoot_ext.data import default_data_dir

MNIST_DIR = Path(default_data_dir())
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "MNIST").is_dir(),
                                 reason=f"no MNIST under {MNIST_DIR} (set SMOOT_DATA_DIR)")
