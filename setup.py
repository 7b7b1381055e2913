"""Build smoot_ext and its C++/CUDA ops (install: see README.md).

Environment flags (flash-attention style):
  SMOOT_SKIP_CUDA=1    build the CPU kernels only, even where torch has CUDA and nvcc exists
  SMOOT_FORCE_CUDA=1   build the CUDA kernels even where they would be skipped (no GPU needed)
  TORCH_CUDA_ARCH_LIST defaults to "8.0;9.0+PTX" (A100, H100/H200, PTX for newer GPUs): with no
                       GPU, torch cannot guess

The torch compiled against is recorded in smoot_ext/_build.json; ``import smoot_ext`` compares
it with the running torch (smoot_ext/_build.py), and the wheel requires that torch release.
"""
import glob
import json
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "build_backend"))
from smoot_build import SUPPORTED_TORCH, check_supported, environment_torch  # noqa: E402

# torch looks for nvcc on PATH only; the toolkit's usual home is a better guess than none.
if "CUDA_HOME" not in os.environ and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"

try:
    import torch
    from torch.utils import cpp_extension
except ImportError as e:
    raise SystemExit(f"smoot_ext compiles against torch ({SUPPORTED_TORCH}): install torch first, or "
                     "let pip's build isolation install it (plain `pip install .`)") from e
check_supported(torch.__version__)


def _release(version: str) -> str:
    return version.split("+")[0]


def _check_build_torch() -> None:
    """Refuse to compile against a torch other than the one the package will run with."""
    target = environment_torch()
    if target is not None and _release(target) != _release(torch.__version__):
        raise SystemExit(
            f"smoot_ext would be compiled against torch {torch.__version__} (the build's), but the "
            f"environment it installs into runs torch {target}; the library would not load there.\n"
            "Build against the environment's torch:  pip install --no-build-isolation .")


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _cuda_plan() -> tuple[bool, str]:
    """(build the CUDA kernels?, why not)."""
    if _flag("SMOOT_SKIP_CUDA"):
        return False, "SMOOT_SKIP_CUDA=1 at build time"
    if torch.version.cuda is None and not _flag("SMOOT_FORCE_CUDA"):
        return False, f"built against torch {torch.__version__}, a build without CUDA"
    if cpp_extension.CUDA_HOME is None:
        if _flag("SMOOT_FORCE_CUDA"):
            raise SystemExit("SMOOT_FORCE_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME")
        return False, "no CUDA toolkit (nvcc) found at build time: set CUDA_HOME"
    return True, ""


def _sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def extensions(with_cuda: bool):
    cxx = ["-O3", "-fopenmp", "-ffp-contract=off"]  # OpenMP for at::parallel_for; no FMA drift
    sources = ["csrc/smoot.cpp"] + _sources("csrc/cpu/*.cpp")
    kwargs = dict(
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_link_args=["-fopenmp"],
    )
    if not with_cuda:
        return [cpp_extension.CppExtension("smoot_ext._C", sources,
                                           extra_compile_args={"cxx": cxx}, **kwargs)]
    # ATen/cuda headers want cusparse.h etc., which ship in the nvidia pip wheels beside torch.
    site = os.path.dirname(os.path.dirname(torch.__file__))
    kwargs["include_dirs"] += [d for d in glob.glob(os.path.join(site, "nvidia", "*", "include"))]
    nvcc = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    return [cpp_extension.CUDAExtension("smoot_ext._C", sources + _sources("csrc/cuda/*.cu"),
                                        extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)]


class BuildExtWithInfo(cpp_extension.BuildExtension.with_options(use_ninja=True)):
    """Builds _C, then records next to it what it was built with (read by smoot_ext/_build.py)."""

    def run(self):
        super().run()
        info = {
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cuda_kernels": WITH_CUDA,
            "why_no_cuda": WHY_NO_CUDA,
            "cuda_home": cpp_extension.CUDA_HOME if WITH_CUDA else None,
            "arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if WITH_CUDA else None,
            "source": ROOT,
        }
        path = os.path.join(os.path.dirname(self.get_ext_fullpath("smoot_ext._C")), "_build.json")
        with open(path, "w") as f:
            json.dump(info, f, indent=1)


_check_build_torch()
WITH_CUDA, WHY_NO_CUDA = _cuda_plan()
if WITH_CUDA:
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")

TRAIN = ["torchvision", "timm", "tqdm", "matplotlib", "scikit-learn", "scipy", "threadpoolctl"]
EVAL = TRAIN + ["captum"]
TEST = ["pytest", "pytest-xdist", "hypothesis", "scipy", "ruff"]
LIGHTNING = ["lightning>=2,<3"]
HF = ["transformers>=5", "accelerate>=1.0"]  # loss_is_scaled_for_ga: Trainer API of 5.x

setup(
    name="smoot_ext",
    version="0.1.0",
    description="Saliency-guided training (SGT, SMOOT) with fast per-row top-k masking ops",
    packages=find_packages(include=["smoot_ext", "smoot_ext.*"]),
    python_requires=">=3.10",
    # The compiled ops load only beside the torch release they were built against.
    install_requires=[f"torch=={_release(torch.__version__)}", "numpy"],
    extras_require={"train": TRAIN, "eval": EVAL, "test": TEST, "lightning": LIGHTNING, "hf": HF,
                    "all": sorted(set(EVAL + TEST + LIGHTNING + HF))},
    entry_points={"console_scripts": [
        "smoot-train = smoot_ext.cli.train:main",
        "smoot-evaluate = smoot_ext.cli.evaluate:main",
        "smoot-reproduce = smoot_ext.cli.reproduce:main",
    ]},
    ext_modules=extensions(WITH_CUDA),
    cmdclass={"build_ext": BuildExtWithInfo},
    zip_safe=False,
)
