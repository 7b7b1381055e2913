import os

import torch

# Triton kernels run on CPU tensors through the interpreter when there is no GPU. This must be
# set before any @triton.jit function is defined, i.e. before smoot_ext is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
