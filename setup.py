"""Build smoot_ext and its C++/CUDA ops (install: see README.md).

Environment flags (flash-attention style):
  SMOOT_SKIP_CUDA=1    build the CPU kernels only, even where torch has CUDA and nvcc exists
  SMOOT_FORCE_CUDA=1   build the CUDA kernels even where they would be skipped (no GPU needed)
  TORCH_CUDA_ARCH_LIST defaults to "8.0;9.0+PTX" (A100, H100/H200, PTX for newer GPUs): with no
                       GPU, torch cannot guess
"""
import glob
import os
import sysconfig

from setuptools import find_packages, setup

# torch looks for nvcc on PATH only; the toolkit's usual home is a better guess than none.
if "CUDA_HOME" not in os.environ and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

try:
    import torch
    from torch.utils import cpp_extension
except ImportError as e:  # build isolation hides the installed torch
    raise SystemExit(
        "smoot_ext builds against the installed torch: install torch first, then run\n"
        "  pip install --no-build-isolation -e .\n(see README.md)"
    ) from e

ROOT = os.path.dirname(os.path.abspath(__file__))


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _build_cuda() -> bool:
    if _flag("SMOOT_SKIP_CUDA"):
        return False
    if _flag("SMOOT_FORCE_CUDA"):
        if cpp_extension.CUDA_HOME is None:
            raise SystemExit("SMOOT_FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")
        return True
    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def _sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def extensions():
    cxx = ["-O3", "-fopenmp", "-ffp-contract=off"]  # OpenMP for at::parallel_for; no FMA drift
    sources = ["csrc/smoot.cpp"] + _sources("csrc/cpu/*.cpp")
    kwargs = dict(
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_link_args=["-fopenmp"],
    )
    if not _build_cuda():
        return [cpp_extension.CppExtension("smoot_ext._C", sources,
                                           extra_compile_args={"cxx": cxx}, **kwargs)]
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    # ATen/cuda headers want cusparse.h etc., which ship in the nvidia pip wheels.
    site = sysconfig.get_paths()["purelib"]
    kwargs["include_dirs"] += [d for d in glob.glob(os.path.join(site, "nvidia", "*", "include"))]
    nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    return [cpp_extension.CUDAExtension("smoot_ext._C", sources + _sources("csrc/cuda/*.cu"),
                                        extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)]


setup(
    name="smoot_ext",
    version="0.1.0",
    description="Saliency-guided training (SGT, SMOOT) with fast per-row top-k masking ops",
    packages=find_packages(include=["smoot_ext", "smoot_ext.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch",  # installed first, at the version the README names; never upgraded from here
        "torchvision",
        "numpy",
        "tqdm",
        "matplotlib",
        "scikit-learn",
        "timm",
        "captum",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "hypothesis"]},
    ext_modules=extensions(),
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
