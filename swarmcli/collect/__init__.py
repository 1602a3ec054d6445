"""`swarm collect MULTIRUN_DIR`: one view of everything a Hydra multirun produced.

A multirun (`swarm run -m ...`, on any Hydra launcher: basic, joblib, submitit_local,
submitit_slurm) writes `MULTIRUN_DIR/multirun.yaml` and one run dir per job. `collect`:

- recomputes the planned job list with Hydra's own override parser and `BasicSweeper`
  (sweep.py, the only user of `hydra._internal`), so jobs that never started are listed as
  missing, not silently forgotten, and sorts every job into complete / failed / interrupted /
  incomplete / missing, from its `swarm.json` and the last error in its `swarm.log` (jobs.py);
- merges every complete job's per-bee `summary.csv` into one tidy table: job, every overridden
  value, cell, the run's own sweep axes, bee, final/best loss, divergence (table.py);
- prints, for the jobs that need it, the exact command that reruns only them, with their saved
  overrides, into the same multirun dir; `--rerun-failed` runs it (rerun.py, command.py);
- draws, with matplotlib alone, the final-loss distribution per value of each swept key and a
  heat map of the median final loss for pairs of keys, into `MULTIRUN_DIR/collect/` (plots.py).

None of it imports torch. `objective` (swarmcli.objective) is the number a `swarm run` job
returns to a Hydra sweeper.
"""

from swarmcli.collect.command import main
from swarmcli.collect.jobs import Job
from swarmcli.collect.table import CollectResult, collect

__all__ = ["CollectResult", "Job", "collect", "main"]
