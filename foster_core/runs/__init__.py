"""Runs: the one evaluator (students), the run store, running a method as a run, background jobs, resume
and presets. Imports core and methods."""
