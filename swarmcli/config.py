"""Typed config schema, registered with Hydra, and the validation that turns a composed config
into a checked `Spec`.

The schema gives Hydra typed composition (`optim.lr=abc` fails at once) and `--cfg job` shows every
field with its default. Names (activation, optimizer, target, ...) stay plain strings checked here
against the registries, so the error message lists exactly the choices the code supports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swarmcli import choices, schedules
from swarmcli.checks import check_choice, check_number
from swarmcli.errors import SwarmError  # noqa: F401 (re-exported: config.SwarmError)

if TYPE_CHECKING:  # Hydra and OmegaConf load where they are used: the schema alone needs neither
    from omegaconf import DictConfig


@dataclass
class SplitConfig:
    """Held-out validation points (their loss is recorded per bee; early stopping watches it)."""

    kind: str = "none"  # none | random | gap (interpolation) | extrapolate (right end)
    fraction: float = 0.2  # share of points (random) or of the domain (gap, extrapolate)
    seed: int = 0  # for random
    gap: list[float] | None = None  # [low, high] held out by `gap`; default: the middle


@dataclass
class TargetConfig:
    """The 1-D function every bee learns."""

    name: str = "sin"  # see `swarm list`
    domain: list[float] = field(default_factory=lambda: [-5.0, 5.0])  # [low, high] of x
    points: int = 61  # evenly spaced training points over the domain
    eval_points: int = 200  # predictions are recorded on this grid plus the training points
    # (0: at the training points only)
    noise_sd: float = 0.0  # sd of Gaussian noise added to y (noisy_sin has its own default)
    noise_seed: int = 0  # noise is drawn once, the same for every bee and cell
    expr: str | None = None  # your own target, e.g. "sin(3*x)*exp(-x**2/4)" (whitelist parser)
    split: SplitConfig = field(default_factory=lambda: SplitConfig())


@dataclass
class DatasetConfig:
    """The labelled 2-D points a classification swarm separates (task.kind=classification)."""

    name: str = "moons"  # moons | circles | xor | spirals | blobs (moons: scikit-learn's)
    samples: int = 100  # points, both classes (half each)
    noise: float = 0.25  # sd of the Gaussian noise added to each coordinate
    seed: int = 3  # the points are drawn once, the same for every bee and cell
    test_fraction: float = 0.25  # held out of training for test accuracy, stratified by class
    val_fraction: float = 0.0  # of the rest, held out for validation (train.patience watches it)
    split_seed: int = 42  # the stratified split's permutation
    grid: int = 40  # predictions are recorded on grid x grid points around the data


@dataclass
class ModelConfig:
    """An MLP 1 -> width x depth -> 1."""

    depth: int = 1  # number of hidden layers
    width: int = 10  # units per hidden layer
    activation: str = "relu"
    init: str = "default"  # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    init_std: float = 0.1  # for init=normal
    init_bounds: list[float] = field(default_factory=lambda: [-0.1, 0.1])  # for init=uniform
    leaky_slope: float = choices.LEAKY_SLOPE  # leaky_relu's negative slope
    dropout: float = 0.0  # probability of dropping a hidden unit while training
    batch_norm: bool = False  # BatchNorm1d after each hidden linear layer


@dataclass
class OptimConfig:
    """Optimizer. Every field left null takes the default of the optimizer named (torch.optim's;
    `swarm list` shows them), so `optim.name=adamw` is exactly `optim=adamw`. Fields another
    optimizer does not use are ignored by it."""

    name: str = "sgd"
    lr: float | None = None
    momentum: float | None = None  # sgd, rmsprop
    dampening: float | None = None  # sgd
    nesterov: bool | None = None  # sgd
    weight_decay: float | None = None  # added to the gradient as torch.optim does (adamw:
    # decoupled)
    betas: list[float] | None = None  # adam, adamw, adamax, nadam
    eps: float | None = None
    alpha: float | None = None  # rmsprop smoothing
    centered: bool | None = None  # rmsprop
    lr_decay: float | None = None  # adagrad
    initial_accumulator_value: float | None = None  # adagrad
    momentum_decay: float | None = None  # nadam


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped once per epoch (torch.optim.lr_scheduler's maths).
    A field left null takes the schedule's default (`swarm list` shows them)."""

    name: str = "constant"  # constant | step | exponential | cosine | cyclic | warmup
    step_size: int | None = None  # step: epochs between decays (30)
    gamma: float | None = None  # step (0.1), exponential (0.98): decay factor
    t_max: int | None = None  # cosine: half period in epochs (train.epochs)
    eta_min: float | None = None  # cosine: floor (0)
    max_lr: float | None = None  # cyclic: peak, required (the base is optim.lr)
    step_size_up: int | None = None  # cyclic: epochs from base to peak (20)
    start_factor: float | None = None  # warmup: lr starts at start_factor * optim.lr (1/3)
    warmup_epochs: int | None = None  # warmup: epochs to reach optim.lr (5)


@dataclass
class TrainConfig:
    """How long, how many bees, where, and what to keep."""

    epochs: int = 150  # full-batch optimizer steps
    bees: int = 10  # networks per cell, differing only in initial weights
    seed: int = 10  # bee i's initial weights depend only on (seed, layer shapes, i)
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "float32"  # float32 | float64
    record: list[str] = field(default_factory=lambda: ["ypred"])  # loss is always kept
    loss: str = "mse"  # mse | mae | huber
    huber_delta: float = 1.0
    l1: float = 0.0  # penalty l1 * sum |W| over weights (not biases), added to the loss
    l2: float = 0.0  # penalty l2 * sum W^2 over weights (not biases)
    batch_size: int | None = None  # mini-batches, each bee shuffling on its own; None: full
    patience: int | None = None  # early stopping: epochs without a better validation loss
    min_delta: float = 0.0  # an improvement must beat the best by more than this
    stride: int = 1  # record every `stride` epochs (the first and last epoch always)
    memory_limit_gb: float | None = None  # recording budget; default: half the free memory
    compile: str = "auto"  # torch.compile each epoch as one graph: auto (large runs), on, off
    native: str = "auto"  # the C kernel: auto (where it covers the run), on (insist), off (torch)
    threads: Any = "auto"  # torch intra-op threads: auto (1 for small batches), or an integer


@dataclass
class SweepConfig:
    """A grid of cells. `grid`: nested keys -> lists, expanded as a product. `paired`: named
    groups of nested keys -> equal-length lists that vary together as one axis. `labels`: axis
    name (a grid key such as model.width, or a paired group's name) -> how figures and tables
    name each value ("SGD", "1x60")."""

    name: str = "single"
    lesson: str = ""  # what the viewer should see, in one line (shown with the figures)
    grid: dict[str, Any] = field(default_factory=dict)
    paired: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)  # axis name -> one label per value


@dataclass
class RenderConfig:
    """What `swarm run` renders after training (`swarm render` takes the same keys)."""

    what: list[str] = field(default_factory=lambda: ["hive", "loss", "compare", "final_loss"])
    epochs: list[int] = field(default_factory=lambda: [0, -1])  # stills at these epochs
    fps: int = 30
    min_seconds: float = 8.0  # short runs play slower (then repeat frames) to last this long
    max_seconds: float = 20.0  # long runs are sub-sampled to at most this video length
    frame_stride: int | None = None  # overrides max_seconds when set
    width: int = 960  # pixels; rounded to even for H.264
    height: int = 720
    dpi: int = 100
    format: str = "mp4"  # mp4 | gif
    workers: int | None = None  # processes drawing frames, and stills; default: every core
    report: bool = True  # write RUN_DIR/report.html (swarm report), linking the figures above


@dataclass
class ObjectiveConfig:
    """The number `swarm run` returns to a Hydra sweeper (lower is better), over every bee of the
    run, a diverged bee counting as +inf. See swarmcli.objective."""

    stat: str = "median"  # median | mean | quantile | fraction_below
    q: float = 0.5  # quantile: 0.9 = "9 inits in 10 reach at most this loss"
    threshold: float = 0.01  # fraction_below returns 1 - (fraction of bees with final loss < it)


@dataclass
class CsvLoggerConfig:
    """Per cell and recorded epoch, the swarm's median and quartiles of loss, as one CSV."""

    save_dir: str | None = None  # default: RUN_DIR/csv


@dataclass
class TensorBoardLoggerConfig:
    """Event files TensorBoard reads: the swarm statistics, the config, the still figures."""

    save_dir: str | None = None  # default: RUN_DIR/tensorboard; a shared folder gets
    # SWEEP/GROUP/JOB sub-folders, so `tensorboard --logdir` shows many runs side by side


@dataclass
class MlflowLoggerConfig:
    """An MLflow run per swarm run: statistics as metrics, the config as params, files as
    artifacts."""

    tracking_uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else file:./mlruns
    experiment_name: str | None = None  # default: the sweep's name
    run_name: str | None = None  # default: the sweep's name (a multirun: job N and overrides)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class WandbLoggerConfig:
    """A W&B run per swarm run (a multirun's jobs share a group); offline with
    WANDB_MODE=offline or logger.wandb.mode=offline."""

    project: str = "swarm"
    entity: str | None = None
    mode: str | None = None  # online | offline | disabled; default: $WANDB_MODE, else online
    save_dir: str | None = None  # where wandb/ goes; default: RUN_DIR
    name: str | None = None  # default: as mlflow's run_name
    tags: list[str] = field(default_factory=list)


@dataclass
class LoggerConfig:
    """Experiment trackers (`logger=csv`, `logger=[tensorboard,wandb]`): each one set here is
    sent, per cell and recorded epoch, the median and inter-quartile range of the training and
    held-out loss (never one series per bee), the config, the figures and the summary table."""

    csv: CsvLoggerConfig | None = None
    tensorboard: TensorBoardLoggerConfig | None = None
    mlflow: MlflowLoggerConfig | None = None
    wandb: WandbLoggerConfig | None = None


@dataclass
class SurfaceConfig:
    """task=landscape: the loss surface whose particles (bees) the optimizers move, or the data
    whose loss it is (mean, line). `swarm list` names the surfaces."""

    name: str = "beale"  # beale | rosenbrock | himmelblau | bowl | saddle | rastrigin | mean | line
    expr: str | None = None  # your own f(x, y), e.g. "x**2 + 10*y**2" (whitelist parser; wins
    # over name)
    start: list[float] | None = None  # where particles start ([mu] for mean); null: the surface's
    spread: float = 0.0  # sd of each particle's Gaussian offset from start (0: all at start)
    domain: list[float] | None = None  # drawn: [x_lo, x_hi, y_lo, y_hi] ([lo, hi] for mean)
    condition: float = 10.0  # bowl: f = (x^2 + condition * y^2) / 2, the Hessian's condition
    n: int = 5  # mean, line: how many samples
    true_mean: float = 2.0  # mean: samples ~ N(true_mean, sd^2)
    sd: float = 3.0  # mean: the samples' sd; line: the noise sd
    sample_seed: int = 0  # mean, line: the data are drawn once, from this seed
    resample: bool = False  # mean: each particle draws its own n samples (seeded by sample_seed
    # and its index), so a swarm shows the sampling error; false: one sample shared by all
    true_line: list[float] = field(default_factory=lambda: [2.0, -1.0])  # line: [w, b] of
    # y = w x + b + noise
    grid: int = 201  # points per side where the surface is evaluated for drawing


@dataclass
class TaskConfig:
    """What the bees learn: a 1-D target (regression), a point on a loss surface (landscape) or a
    2-D decision boundary (classification)."""

    kind: str = "regression"  # regression | landscape | classification


@dataclass
class SwarmConfig:
    task: TaskConfig = field(default_factory=lambda: TaskConfig())
    target: TargetConfig = field(default_factory=TargetConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    surface: SurfaceConfig = field(default_factory=SurfaceConfig)
    progress: bool = True  # progress bar (only ever shown on a terminal)
    overwrite: bool = False  # replace a finished run already in hydra.run.dir


def register_schema() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="swarm_schema", node=SwarmConfig)


def compose(overrides=()) -> DictConfig:
    """The config `swarm run OVERRIDES` would see (without Hydra's own `hydra` node), for
    notebooks, tests and benchmarks."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    register_schema()
    with initialize_config_module(config_module="swarmcli.configs", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def validate(cfg: SwarmConfig) -> SwarmConfig:
    """Check one cell's settings; raise SwarmError naming the bad value and the valid choices."""
    # numpy's modules here, not at the top: composing a config (--cfg, --help) needs none of them
    from swarmcli import datasets, targets
    from swarmcli.objective import check_objective

    t, m, o, tr = cfg.target, cfg.model, cfg.optim, cfg.train
    check_choice("task.kind", cfg.task.kind, choices.TASKS)
    if cfg.task.kind == "landscape":
        from swarmcli.landscape import surfaces

        surfaces.check(cfg.surface)
    datasets.check(cfg.dataset)
    targets.check(t)
    check_number("model.depth", m.depth, low=1, integer=True)
    check_number("model.width", m.width, low=1, integer=True)
    check_choice("model.activation", m.activation, choices.ACTIVATIONS)
    check_choice("model.init", m.init, choices.INITS)
    check_number("model.init_std", m.init_std, low=0, low_open=True)
    if len(m.init_bounds) != 2 or not m.init_bounds[0] < m.init_bounds[1]:
        raise SwarmError(f"model.init_bounds={list(m.init_bounds)!r} must be [a, b] with a < b")
    check_number("model.dropout", m.dropout, low=0, high=1, high_open=True)
    check_choice("optim.name", o.name, choices.OPTIMIZERS)
    eff = choices.effective(o)
    # a particle may stand still (lr 0: seed 003's baseline path); a net at lr 0 is a mistake
    check_number("optim.lr", eff["lr"], low=0, low_open=cfg.task.kind != "landscape")
    for key in ("momentum", "dampening", "alpha", "lr_decay", "initial_accumulator_value",
                "momentum_decay", "weight_decay"):
        if eff.get(key) is not None:
            check_number(f"optim.{key}", eff[key], low=0)
    if eff.get("eps") is not None:
        check_number("optim.eps", eff["eps"], low=0, low_open=True)
    betas = eff.get("betas")
    if betas is not None and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
        raise SwarmError(f"optim.betas={list(betas)!r} must be two numbers in [0, 1)")
    if eff.get("nesterov") and ((eff.get("momentum") or 0) <= 0 or eff.get("dampening")):
        raise SwarmError("optim.nesterov=true needs optim.momentum > 0 and optim.dampening = 0")
    check_choice("schedule.name", cfg.schedule.name, choices.SCHEDULES)
    try:
        schedules.resolve(cfg.schedule.name, schedule_params(cfg), tr.epochs)
    except ValueError as e:
        raise SwarmError(str(e)) from None
    check_number("train.epochs", tr.epochs, low=0, integer=True)
    check_number("train.bees", tr.bees, low=1, integer=True)
    check_number("train.stride", tr.stride, low=1, integer=True)
    check_choice("train.device", tr.device, choices.DEVICES)
    check_choice("train.dtype", tr.dtype, choices.DTYPES)
    check_choice("train.compile", tr.compile, choices.COMPILE)
    check_choice("train.native", tr.native, choices.NATIVE)
    check_choice("train.loss", tr.loss, choices.LOSSES)
    if tr.threads != "auto":
        check_number("train.threads", tr.threads, low=1, integer=True, hint=" (or auto)")
    check_number("train.huber_delta", tr.huber_delta, low=0, low_open=True)
    check_number("train.l1", tr.l1, low=0)
    check_number("train.l2", tr.l2, low=0)
    if tr.batch_size is not None:
        check_number("train.batch_size", tr.batch_size, low=1, integer=True)
    if tr.patience is not None:
        check_number("train.patience", tr.patience, low=1, integer=True)
        if cfg.task.kind == "classification" and cfg.dataset.val_fraction == 0:
            raise SwarmError("train.patience needs validation points: set "
                             "dataset.val_fraction > 0")
        if cfg.task.kind != "classification" and t.split.kind == "none":
            raise SwarmError("train.patience needs validation points: set target.split.kind "
                             "to one of: random, gap, extrapolate")
    for f in tr.record:
        check_choice("train.record", f, choices.RECORDABLE)

    check_objective(cfg.objective.stat, cfg.objective.q, cfg.objective.threshold)
    if cfg.logger.wandb is not None and cfg.logger.wandb.mode is not None:
        check_choice("logger.wandb.mode", cfg.logger.wandb.mode, choices.WANDB_MODES)
    return cfg


def task_kind(cfg) -> str:
    """cfg.task.kind, or "regression" for a config saved before tasks existed (an old run dir's
    .hydra/config.yaml, which Hydra loads in struct mode: a missing key raises AttributeError)."""
    return getattr(getattr(cfg, "task", None), "kind", None) or "regression"


def schedule_params(cfg: SwarmConfig) -> dict:
    return {k: v for k, v in vars(cfg.schedule).items() if k != "name"}


def to_schema(cfg: DictConfig | dict) -> SwarmConfig:
    """Merge a plain or saved config onto the schema and return the typed object.

    Used for reruns (`.hydra/config.yaml` merged onto the schema) and for per-cell configs."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(SwarmConfig), cfg)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise SwarmError(one_line(e)) from None


def one_line(e: Exception) -> str:
    """OmegaConf's multi-line type errors as one line that names the key and the bad value."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{key}: {first}" if key else first
