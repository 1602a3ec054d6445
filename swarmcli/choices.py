"""Every name a config may choose from, and the optimizers' defaults: plain Python, no torch.

Validation (config.py), `swarm list`, `--help` and tab completion read the lists from here, so
they never pay for importing torch; nn.py, optim.py and schedules.py implement each name and
take their list from here (a test keeps the implementations and the names equal).
"""

from __future__ import annotations

TASKS = ("regression", "landscape", "classification")

# classification's 2-D datasets (swarmcli/datasets.py draws each; a test keeps the names equal)
DATASETS = ("moons", "circles", "xor", "spirals", "blobs")

ACTIVATIONS = ("relu", "tanh", "tanhshrink", "sigmoid", "leaky_relu", "identity", "elu", "gelu",
               "silu", "softplus", "sin")

LEAKY_SLOPE = 0.01  # leaky_relu's negative slope unless model.leaky_slope says (torch's default)

# Weight initialisations (the bias is zero for all but `default`, as is usual with these schemes).
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
         "normal", "uniform", "zeros")

# torch.optim's defaults, by config field name (betas as [beta1, beta2]); the keys are the
# optimizers' names.
# The optimizers' flags: true or false for a whole batch; every other field is a per-bee number.
OPTIM_FLAGS = ("nesterov", "centered")
DEFAULTS: dict[str, dict[str, object]] = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
            "nesterov": False},
    "adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2},
    "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                "centered": False},
    "adagrad": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                "initial_accumulator_value": 0.0, "eps": 1e-10},
    "adamax": {"lr": 2e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    "nadam": {"lr": 2e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
              "momentum_decay": 4e-3},
}
OPTIMIZERS = tuple(DEFAULTS)

# name -> {parameter: default}. None: t_max = the run's epochs; max_lr must be given.
SCHEDULES: dict[str, dict[str, float | int | None]] = {
    "constant": {},
    "step": {"step_size": 30, "gamma": 0.1},
    "exponential": {"gamma": 0.98},
    "cosine": {"t_max": None, "eta_min": 0.0},
    "cyclic": {"max_lr": None, "step_size_up": 20},
    "warmup": {"start_factor": 1.0 / 3, "warmup_epochs": 5},
}

LOSSES = ("mse", "mae", "huber")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
COMPILE = ("auto", "on", "off")
NATIVE = ("auto", "on", "off")
LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")  # logger=NAME: configs/logger/
WANDB_MODES = ("online", "offline", "disabled")
RECORDABLE = ("ypred", "weights", "biases")

# Figures and formats of `render` (swarmcli.render draws each; a test keeps the names equal), here
# so that completing them needs no matplotlib.
RENDER_WHAT = ("hive", "loss", "compare", "final_loss", "kinks", "activations", "hive_animation",
               "swarm_loss_animation", "kinks_animation", "units", "units_animation", "none")
RENDER_FORMATS = ("mp4", "gif")

# List-valued keys and the names their items take; keys that are true or false.
LISTS = {"train.record": RECORDABLE, "render.what": RENDER_WHAT}
BOOLEANS = ("progress", "overwrite", "model.batch_norm", "optim.nesterov", "optim.centered",
            "render.report", "surface.resample")


def effective(optim_cfg) -> dict:
    """Every field of an OptimConfig with its nulls filled from the named optimizer's defaults
    (a field the optimizer does not use stays as given, usually None)."""
    given = {k: v for k, v in vars(optim_cfg).items() if k != "name"}
    return {**given, **{k: v if given.get(k) is None else given[k]
                        for k, v in DEFAULTS[optim_cfg.name].items()}}

# task=landscape: the named surfaces (swarmcli/landscape/surfaces.py defines each) and the
# data landscapes (a loss over parameters fitted to generated data).
SURFACES = ("beale", "rosenbrock", "himmelblau", "bowl", "saddle", "rastrigin", "mean", "line")
