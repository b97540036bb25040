"""Analysis: what the app and reports show of data and runs: projections for the map, dataset profiles,
a run's progress and loss curves, the comparison table. Imports core, methods and runs."""
