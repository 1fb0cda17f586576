"""Energy- and carbon-aware timing and placement of jobs, locally and on Ray."""
