"""Model spaces of NAS papers, built from nascore's primitives.

* :class:`NasBench101` (and its cell :class:`NasBench101Cell`): the NAS-Bench-101 space, cells of at
  most seven vertices and nine edges (Ying et al., ICML 2019).
* :class:`NasBench201` (and its cell :class:`NasBench201Cell`): the NAS-Bench-201 space, 15,625
  cell architectures (Dong & Yang, ICLR 2020).
* :class:`NasBenchGraph`: the NAS-Bench-Graph space of graph neural networks, 157,440 samples
  (26,206 architectures up to isomorphism) (Qin et al., NeurIPS 2022 Datasets and Benchmarks).
* The NDS cell spaces :class:`NASNet`, :class:`ENAS`, :class:`AmoebaNet`, :class:`PNAS` and :class:`DARTS`
  (Radosavovic et al., ICCV 2019), width and depth searched or fixed (the "fix-w-d" variants); e.g.
  DARTS: 83,013,134,400 ** 2 cell pairs per width and depth.
* :class:`ProxylessNAS`: MBConv choices and stage depths, 6 * 1554 ** 5 (about 5.44e16) samples (Cai et al.,
  ICLR 2019); :class:`MobileNetV3Space`: widths, kernels, expansions, depths and squeeze-excitation as
  choices in layer arguments, about 2.20e36 samples (Howard et al., ICCV 2019).
* :class:`ShuffleNetSpace` (blocks :class:`ShuffleNetBlock`, :class:`ShuffleXceptionBlock`): the SPOS
  space, 4 ** 20 architectures, with channel search 32 ** 20 (Guo et al., ECCV 2020).
* :class:`AutoFormer`: the vision-transformer space of AutoFormer, 280,804,921,344 architectures in its
  "tiny" configuration (Chen et al., ICCV 2021).
* :class:`AutoActivation` and :class:`AutoActivationResNet`: activation functions searched from unary and
  binary operators, 6,250 per unit (Ramachandran et al., 2017).
"""

from nascore_hub.spaces.autoactivation import AutoActivation, AutoActivationResNet
from nascore_hub.spaces.autoformer import AutoFormer
from nascore_hub.spaces.mobilenetv3 import MobileNetV3Space
from nascore_hub.spaces.nasbench101 import NasBench101, NasBench101Cell
from nascore_hub.spaces.nasbench201 import NasBench201, NasBench201Cell
from nascore_hub.spaces.nasbenchgraph import NasBenchGraph
from nascore_hub.spaces.nds import DARTS, ENAS, NDS, PNAS, AmoebaNet, NASNet
from nascore_hub.spaces.proxylessnas import ProxylessNAS
from nascore_hub.spaces.shufflenet import ShuffleNetBlock, ShuffleNetSpace, ShuffleXceptionBlock

__all__ = [
    "AmoebaNet",
    "AutoActivation",
    "AutoActivationResNet",
    "AutoFormer",
    "DARTS",
    "ENAS",
    "MobileNetV3Space",
    "NASNet",
    "NDS",
    "PNAS",
    "ProxylessNAS",
    "NasBench101",
    "NasBench101Cell",
    "NasBench201",
    "NasBench201Cell",
    "NasBenchGraph",
    "ShuffleNetBlock",
    "ShuffleNetSpace",
    "ShuffleXceptionBlock",
]
