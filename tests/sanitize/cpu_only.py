"""pytest plugin of scripts/sanitize_cpu.sh (``-p cpu_only``): keeps the tests of the C++ CPU
kernels and the tests that take no backend, and deselects the runs of the other backends (CUDA,
Triton, the reference, the fake rules), which the sanitized build does not instrument."""


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("op") if callspec else None  # a cases.Backend
        (keep if backend is None or getattr(backend, "name", None) == "cpu" else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
