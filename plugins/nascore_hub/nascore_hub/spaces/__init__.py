"""Model spaces of NAS papers, built from nascore's primitives.

* :class:`NasBench101` (and its cell :class:`NasBench101Cell`): the NAS-Bench-101 space, cells of at
  most seven vertices and nine edges (Ying et al., ICML 2019).
* :class:`NasBench201` (and its cell :class:`NasBench201Cell`): the NAS-Bench-201 space, 15,625
  cell architectures (Dong & Yang, ICLR 2020).
* :class:`NasBenchGraph`: the NAS-Bench-Graph space of graph neural networks, 157,440 samples
  (26,206 architectures up to isomorphism) (Qin et al., NeurIPS 2022 Datasets and Benchmarks).
"""

from nascore_hub.spaces.nasbench101 import NasBench101, NasBench101Cell
from nascore_hub.spaces.nasbench201 import NasBench201, NasBench201Cell
from nascore_hub.spaces.nasbenchgraph import NasBenchGraph

__all__ = ["NasBench101", "NasBench101Cell", "NasBench201", "NasBench201Cell", "NasBenchGraph"]
