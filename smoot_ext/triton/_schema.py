"""The schemas of the Triton ops, read from their C++ twins (csrc/smoot.cpp defines them once)."""
import torch


def schema_of(op: str) -> str:
    """``(args) -> (returns)`` of ``smoot::<op>``, for ``triton_op`` to register under a new name."""
    schema = str(getattr(torch.ops.smoot, op).default._schema)
    return schema[schema.index("("):]
