"""Model spaces of NAS papers, built from nascore's primitives.

* :class:`NasBench101` (and its cell :class:`NasBench101Cell`): the NAS-Bench-101 space, cells of at
  most seven vertices and nine edges (Ying et al., ICML 2019).
* :class:`NasBench201` (and its cell :class:`NasBench201Cell`): the NAS-Bench-201 space, 15,625
  cell architectures (Dong & Yang, ICLR 2020).
"""

from nascore_hub.spaces.nasbench101 import NasBench101, NasBench101Cell
from nascore_hub.spaces.nasbench201 import NasBench201, NasBench201Cell

__all__ = ["NasBench101", "NasBench101Cell", "NasBench201", "NasBench201Cell"]
