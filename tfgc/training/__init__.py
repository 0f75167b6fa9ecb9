"""What `python -m tfgc.train` runs a model's fit with: the callbacks of a run (checkpoints, backups' bookkeeping,
time limits and budgets, the learning-rate schedule, snapshots, images for TensorBoard), and which worker of a
multi-worker run writes the run's files (workers)."""
