"""The options of one evaluation, whole: built once (by ``smoot-evaluate`` or a caller), checked
when built, and taken as they are by the pipeline and the scoring pass."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .attribution import AttributionConfig, check_methods
from .choices import check_count
from .imputation import ROAD_NOISE, Imputation, check_fill
from .perturbation import DEFAULT_LEVELS, check_levels, check_orders
from .results import ORDERS, RANDOM
from .statistics import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, check_bootstrap
from .units import check_unit


@dataclass
class EvalConfig:
    methods: list[str] = field(default_factory=lambda: ["saliency", "integrated_gradients"])
    levels: list[float] = field(default_factory=lambda: list(DEFAULT_LEVELS))  # fractions removed
    orders: list[str] = field(default_factory=lambda: list(ORDERS))
    fill: str = "uniform"  # one of imputation.IMPUTATIONS
    fill_value: tuple | None = None  # the constant fill; None = background
    road_noise: float = ROAD_NOISE
    background: tuple = (0.0,)  # black in the data's (normalised) units, per channel; also the attribution baseline
    data_range: float = 1.0  # max - min of the data, scales SmoothGrad/GradientShap noise
    unit: str = "pixel"  # one of units.REMOVAL_UNITS: rank and remove whole pixels (all channels) or single features
    abs: bool = True  # rank by |attribution| (the paper's gradient magnitude) or the signed value
    seed: int = 0  # test subset, random order, fill draws, bootstrap
    num_test: int | None = 1000  # test images, a seeded subset; None = the whole test set
    batch_size: int = 250  # images per attribution batch
    grid_images: int = 6  # how many test images the saliency-map grid shows
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    bootstrap: int = DEFAULT_RESAMPLES  # bootstrap resamples of the test images
    confidence: float = DEFAULT_CONFIDENCE
    forward_batch: int | None = None  # inputs per forward pass of the removal curves; None: by their size
    progress: bool = True

    def __post_init__(self):
        self.methods = check_methods(self.methods)
        self.levels = check_levels(self.levels)
        self.orders = check_orders(self.orders)
        self.fill = check_fill(self.fill)
        self.background = _floats(self.background)
        if self.fill_value is not None:
            self.fill_value = _floats(self.fill_value)
        self.imputation  # noqa: B018  (validates the fill's parameters now, not mid-run)
        check_bootstrap(self.bootstrap, self.confidence)
        check_unit(self.unit)
        counts = [("batch_size", self.batch_size), ("grid_images", self.grid_images)]
        # None: the whole test set; the forward batch by the inputs' size (perturbation.default_forward_batch)
        counts += [(option, v) for option, v in (("num_test", self.num_test), ("forward_batch", self.forward_batch))
                   if v is not None]
        for option, v in counts:
            check_count(option, v)
        check_count("seed", self.seed, least=0)  # the fill seeds derive from it (numpy's SeedSequence)
        if not isinstance(self.attribution, AttributionConfig):
            raise ValueError(f"attribution: expected an AttributionConfig, got {type(self.attribution).__name__}")

    @property
    def imputation(self) -> Imputation:
        value = self.background if self.fill_value is None else self.fill_value
        return Imputation(self.fill, value, self.road_noise)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(method, order) of every curve: the saliency orders per method, then the random one."""
        keys = [(m, o) for m in self.methods for o in self.orders if o != RANDOM]
        return keys + ([(RANDOM, RANDOM)] if RANDOM in self.orders else [])


def _floats(v) -> tuple:
    return tuple(float(a) for a in torch.as_tensor(v).reshape(-1))
