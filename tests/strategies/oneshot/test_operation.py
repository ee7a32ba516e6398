"""Mixed operations give the output of the plain layer for the chosen values, in every algorithm.

For each layer, the mixed operation is built from a ``Mutable<Layer>`` with choices, the plain layer
with ``fixed_arch`` for a sample, and the plain layer gets the slices of the super weights. Sampling
must then give exactly its output; differentiable and proxyless (with all probability on the
chosen values) give it in the super layout: the same values, zeros beyond the chosen size.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nascore
from nascore.errors import StrategyError
from nascore.nn import (
    MutableBatchNorm2d,
    MutableConv2d,
    MutableLayerNorm,
    MutableLinear,
    MutableMultiheadAttention,
)
from nascore_strategies.oneshot.supermodule import ArchParameters, mixed_operation_hook

MODES = ["sampling", "differentiable", "proxyless"]


def mixed(space_module, mode):
    arch = None if mode == "sampling" else ArchParameters(generator=torch.Generator().manual_seed(0))
    op = mixed_operation_hook(space_module, "net.op", {}, {"mode": mode, "arch": arch, "strategy": "test"})
    assert op is not None
    return op, arch


def choose(op, arch, sample):
    """Make ``op`` run ``sample``: sampled values, and (differentiable) all probability on them."""
    op.resample(dict(sample))
    if arch is not None:
        with torch.no_grad():
            for label, decision in arch.decisions.items():
                alpha = arch.alpha(label)
                alpha.fill_(float("-inf"))
                alpha[decision.index_of(sample[label])] = 0.0


def compare(output, expected, channel_dim):
    """The mixed output equals the plain one; in the super layout, zeros follow the chosen size."""
    size = expected.shape[channel_dim]
    assert output.shape[channel_dim] >= size
    torch.testing.assert_close(output.narrow(channel_dim, 0, size), expected, rtol=1e-5, atol=1e-5)
    rest = output.narrow(channel_dim, size, output.shape[channel_dim] - size)
    assert torch.count_nonzero(rest) == 0


def conv_weights(op, plain):
    out_channels, in_per_group, kh, kw = plain.weight.shape
    top, left = (op.max_kernel[0] - kh) // 2, (op.max_kernel[1] - kw) // 2
    with torch.no_grad():
        plain.weight.copy_(op.weight[:out_channels, :in_per_group, top : top + kh, left : left + kw])
        plain.bias.copy_(op.bias[:out_channels])


#: Choices that change the output's spatial shape: a differentiable strategy cannot add those outputs up.
SHAPE_CHANGING = {"stride", "padding", "even-kernel"}

CONV_CASES = {
    "channels-and-kernel": (
        lambda: MutableConv2d(
            3, nascore.choice("width", [4, 8]), nascore.choice("k", [1, 3, 5]), padding=nascore.choice("k", [1, 3, 5]) // 2
        ),
        [{"width": 4, "k": 3}, {"width": 8, "k": 5}, {"width": 8, "k": 1}],
        lambda sample: torch.randn(2, 3, 9, 9),
    ),
    "in-channels": (
        lambda: MutableConv2d(nascore.choice("cin", [2, 6]), 5, 3, padding=1),
        [{"cin": 2}, {"cin": 6}],
        lambda sample: torch.randn(2, sample["cin"], 7, 7),
    ),
    "depthwise-groups": (
        lambda: MutableConv2d(
            nascore.choice("c", [4, 8]), nascore.choice("c", [4, 8]), 3, padding=1, groups=nascore.choice("c", [4, 8])
        ),
        [{"c": 4}, {"c": 8}],
        lambda sample: torch.randn(2, sample["c"], 6, 6),
    ),
    "groups": (
        lambda: MutableConv2d(8, 8, 3, padding=1, groups=nascore.choice("g", [1, 2, 4])),
        [{"g": 1}, {"g": 2}, {"g": 4}],
        lambda sample: torch.randn(2, 8, 6, 6),
    ),
    "stride": (
        lambda: MutableConv2d(3, 4, 3, stride=nascore.choice("s", [1, 2]), padding=1),
        [{"s": 1}, {"s": 2}],
        lambda sample: torch.randn(2, 3, 8, 8),
    ),
    "dilation-and-padding": (
        lambda: MutableConv2d(3, 4, 3, dilation=nascore.choice("d", [1, 2]), padding=nascore.choice("d", [1, 2])),
        [{"d": 1}, {"d": 2}],
        lambda sample: torch.randn(2, 3, 8, 8),
    ),
    "padding": (
        lambda: MutableConv2d(3, 4, 3, padding=nascore.choice("p", [0, 1])),
        [{"p": 0}, {"p": 1}],
        lambda sample: torch.randn(2, 3, 8, 8),
    ),
    "even-kernel": (
        lambda: MutableConv2d(3, 4, nascore.choice("k", [2, 3]), padding=1),
        [{"k": 2}, {"k": 3}],
        lambda sample: torch.randn(2, 3, 8, 8),
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_matches_the_plain_layer(case, mode):
    make, samples, make_input = CONV_CASES[case]
    torch.manual_seed(0)
    op, arch = mixed(make(), mode)
    if mode == "differentiable" and case in SHAPE_CHANGING:
        with pytest.raises(StrategyError, match=r"module 'net.op'.*different shapes"):
            op(make_input(samples[0]))
        return
    for sample in samples:
        with nascore.fixed_arch(sample):
            plain = make()
        assert type(plain) is nn.Conv2d
        conv_weights(op, plain)
        choose(op, arch, sample)
        x = make_input(sample)
        x_super = x
        if mode != "sampling" and x.shape[1] < op.max_in_channels:
            # Differentiable layers receive the super layout: the extra channels must not matter.
            x_super = torch.cat([x, torch.randn(x.shape[0], op.max_in_channels - x.shape[1], *x.shape[2:])], 1)
        compare(op(x_super), plain(x), channel_dim=1)


def test_differentiable_conv2d_mixes_kernels_by_masks_and_channels_in_one_run():
    op, _ = mixed(CONV_CASES["channels-and-kernel"][0](), "differentiable")
    assert op.maskable == {"out_channels", "kernel_size", "padding"}
    assert op.branch_labels == []
    op, _ = mixed(CONV_CASES["groups"][0](), "differentiable")
    assert op.branch_labels == ["g"]


def test_differentiable_output_is_the_expectation_over_choices():
    torch.manual_seed(0)
    make = CONV_CASES["channels-and-kernel"][0]
    op, arch = mixed(make(), "differentiable")
    with torch.no_grad():
        arch.alpha("width").copy_(torch.tensor([0.3, -0.4]))
        arch.alpha("k").copy_(torch.tensor([0.1, 0.5, -0.2]))
    x = torch.randn(2, 3, 9, 9)
    expected = torch.zeros(2, 8, 9, 9)
    for i, width in enumerate([4, 8]):
        for j, k in enumerate([1, 3, 5]):
            with nascore.fixed_arch({"width": width, "k": k}):
                plain = make()
            conv_weights(op, plain)
            weight = arch.probs("width")[i] * arch.probs("k")[j]
            expected[:, :width] += weight.detach() * plain(x).detach()
    torch.testing.assert_close(op(x).detach(), expected, rtol=1e-4, atol=1e-5)


def test_differentiable_conv2d_refuses_strides_that_change_the_shape():
    op, _ = mixed(CONV_CASES["stride"][0](), "differentiable")
    with pytest.raises(StrategyError, match=r"module 'net.op'.*different shapes.*sampling strategy"):
        op(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("mode", MODES)
def test_linear_matches_the_plain_layer(mode):
    torch.manual_seed(0)

    def make():
        return MutableLinear(nascore.choice("fin", [3, 6]), nascore.choice("fout", [2, 5]))

    op, arch = mixed(make(), mode)
    for sample in ({"fin": 3, "fout": 2}, {"fin": 6, "fout": 5}, {"fin": 3, "fout": 5}):
        with nascore.fixed_arch(sample):
            plain = make()
        assert type(plain) is nn.Linear
        with torch.no_grad():
            plain.weight.copy_(op.weight[: sample["fout"], : sample["fin"]])
            plain.bias.copy_(op.bias[: sample["fout"]])
        choose(op, arch, sample)
        x = torch.randn(4, sample["fin"])
        compare(op(x), plain(x), channel_dim=-1)


@pytest.mark.parametrize("mode", MODES)
def test_batchnorm2d_matches_the_plain_layer_and_updates_its_statistics(mode):
    torch.manual_seed(0)

    def make():
        return MutableBatchNorm2d(nascore.choice("c", [3, 6]))

    op, arch = mixed(make(), mode)
    with torch.no_grad():
        op.weight.uniform_(0.5, 1.5)
        op.bias.uniform_(-1, 1)
    for sample in ({"c": 3}, {"c": 6}):
        with nascore.fixed_arch(sample):
            plain = make()
        c = sample["c"]
        with torch.no_grad():
            plain.weight.copy_(op.weight[:c])
            plain.bias.copy_(op.bias[:c])
            plain.running_mean.copy_(op.running_mean[:c])
            plain.running_var.copy_(op.running_var[:c])
        choose(op, arch, sample)
        x = torch.randn(4, c, 5, 5) * 3 + 1
        compare(op(x), plain(x), channel_dim=1)
        torch.testing.assert_close(op.running_mean[:c], plain.running_mean)
        op.eval(), plain.eval()
        compare(op(x), plain(x), channel_dim=1)
        op.train(), plain.train()


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_mixes_widths_as_the_masked_output_of_the_super_layer(affine):
    """Between widths, the output is the super layer's output times the weighted mask (for an affine layer the
    mask scales the affine parameters instead: the same values and architecture gradients)."""
    torch.manual_seed(0)
    op, arch = mixed(MutableBatchNorm2d(nascore.choice("c", [2, 5]), affine=affine), "differentiable")
    if affine:
        with torch.no_grad():
            op.weight.uniform_(0.5, 1.5)
            op.bias.uniform_(-1, 1)
    alpha = arch.alpha("c")
    with torch.no_grad():
        alpha.copy_(torch.tensor([0.3, -0.4]))
    x = torch.randn(4, 5, 3, 3) * 2 + 1
    reference = nn.BatchNorm2d(5, affine=affine)
    if affine:
        with torch.no_grad():
            reference.weight.copy_(op.weight)
            reference.bias.copy_(op.bias)
    w = torch.softmax(alpha, 0)
    mask = w[0] * (torch.arange(5) < 2).float() + w[1] * torch.ones(5)
    expected = reference(x) * mask[None, :, None, None]
    output = op(x)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
    (got,) = torch.autograd.grad((output * x).sum(), [alpha])
    (want,) = torch.autograd.grad((expected * x).sum(), [alpha])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(op.running_mean, reference.running_mean)


def test_batchnorm2d_momentum_choice_is_for_sampling_strategies_only():
    make = lambda: MutableBatchNorm2d(4, momentum=nascore.choice("m", [0.1, 0.5]))  # noqa: E731
    op, _ = mixed(make(), "sampling")
    op.resample({"m": 0.5})
    op(torch.randn(4, 4, 3, 3) + 2)
    assert float(op.running_mean.mean()) > 0.5  # momentum 0.5 moved the statistics halfway
    with pytest.raises(StrategyError, match=r"module 'net.op'.*'momentum'.*only be searched by a sampling strategy"):
        mixed(make(), "differentiable")


@pytest.mark.parametrize("mode", MODES)
def test_layernorm_matches_the_plain_layer(mode):
    torch.manual_seed(0)

    def make():
        return MutableLayerNorm(nascore.choice("d", [4, 8]), eps=nascore.choice("eps", [1e-5, 1e-2]))

    op, arch = mixed(make(), mode)
    with torch.no_grad():
        op.weight.uniform_(0.5, 1.5)
        op.bias.uniform_(-1, 1)
    for sample in ({"d": 4, "eps": 1e-2}, {"d": 8, "eps": 1e-5}):
        with nascore.fixed_arch(sample):
            plain = make()
        with torch.no_grad():
            plain.weight.copy_(op.weight[: sample["d"]])
            plain.bias.copy_(op.bias[: sample["d"]])
        choose(op, arch, sample)
        x = torch.randn(3, 5, sample["d"])
        compare(op(x), plain(x), channel_dim=-1)


def mha_weights(op, plain):
    e, full = plain.embed_dim, op.embed_dim
    with torch.no_grad():
        plain.in_proj_weight.copy_(torch.cat([op.in_proj_weight[i * full : i * full + e, :e] for i in range(3)]))
        plain.in_proj_bias.copy_(torch.cat([op.in_proj_bias[i * full : i * full + e] for i in range(3)]))
        plain.out_proj.weight.copy_(op.out_proj.weight[:e, :e])
        plain.out_proj.bias.copy_(op.out_proj.bias[:e])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_multihead_attention_matches_the_plain_layer(mode, batch_first):
    torch.manual_seed(0)

    def make():
        return MutableMultiheadAttention(
            nascore.choice("embed", [8, 16]), nascore.choice("heads", [2, 4]), batch_first=batch_first
        )

    op, arch = mixed(make(), mode)
    op.eval()
    for sample in ({"embed": 8, "heads": 2}, {"embed": 16, "heads": 4}, {"embed": 16, "heads": 2}):
        with nascore.fixed_arch(sample):
            plain = make()
        assert type(plain) is nn.MultiheadAttention and plain.num_heads == sample["heads"]
        plain.eval()
        mha_weights(op, plain)
        choose(op, arch, sample)
        q = torch.randn(3, 5, sample["embed"]) if batch_first else torch.randn(5, 3, sample["embed"])
        kv = torch.randn(3, 7, sample["embed"]) if batch_first else torch.randn(7, 3, sample["embed"])
        output, weights = op(q, kv, kv)
        expected, expected_weights = plain(q, kv, kv)
        compare(output, expected, channel_dim=-1)
        torch.testing.assert_close(weights, expected_weights, rtol=1e-5, atol=1e-5)


def test_mixed_operations_share_the_architecture_parameters_of_a_label():
    arch = ArchParameters()
    kwargs = {"mode": "differentiable", "arch": arch, "strategy": "test"}
    width = nascore.choice("width", [4, 8])
    first = mixed_operation_hook(MutableLinear(3, width), "a", {}, kwargs)
    second = mixed_operation_hook(MutableLinear(width, 2), "b", {}, kwargs)
    assert arch.labels() == ["width"]
    assert first.search_space_spec()["width"] is second.search_space_spec()["width"]
    assert first.export({}) == second.export({}) == {"width": arch.export("width")}


def test_layers_of_one_width_decision_share_their_weighted_mask_within_a_forward_pass():
    arch = ArchParameters(generator=torch.Generator().manual_seed(0))
    kwargs = {"mode": "differentiable", "arch": arch, "strategy": "test"}
    width = nascore.choice("width", [4, 8])
    conv = mixed_operation_hook(MutableConv2d(3, width, 1), "conv", {}, kwargs)
    norm = mixed_operation_hook(MutableBatchNorm2d(width), "norm", {}, kwargs)
    linear = mixed_operation_hook(MutableLinear(width, 2), "linear", {}, kwargs)
    other = mixed_operation_hook(MutableLinear(3, nascore.choice("other", [4, 8])), "other", {}, kwargs)
    with torch.no_grad():
        arch.alpha("width").copy_(torch.tensor([0.2, -0.3]))
        arch.alpha("other").copy_(torch.tensor([-0.5, 0.4]))

    def masks():
        found = [op.mask(name, op._arguments({label: arch.weights(label) for label in op.leaves}, {})[name])
                 for op, name in ((conv, "out_channels"), (norm, "num_features"), (linear, "in_features"),
                                  (other, "out_features"))]
        return found

    with arch.scope():
        shared = masks()
    assert shared[0] is shared[1] is shared[2]  # computed once for the three layers of "width"
    assert shared[3] is not shared[0]  # another decision: its own weights, its own mask
    torch.testing.assert_close(shared[0], arch.probs("width") @ torch.tensor([[1.0] * 4 + [0.0] * 4, [1.0] * 8]))
    torch.testing.assert_close(shared[3], arch.probs("other") @ torch.tensor([[1.0] * 4 + [0.0] * 4, [1.0] * 8]))
    unscoped = masks()  # outside a forward pass's scope, each call computes its own, with equal values
    assert unscoped[0] is not unscoped[1]
    for a, b in zip(shared, unscoped):
        torch.testing.assert_close(a, b)
    with arch.scope():
        again = masks()
    assert again[0] is not shared[0]  # a new pass computes afresh (the weights may have changed)


def test_an_argument_without_weight_sharing_is_refused_with_its_path():
    with pytest.raises(StrategyError, match=r"module 'net.op'.*argument 'bias'.*cannot share weights"):
        mixed(MutableLinear(3, 4, bias=nascore.choice("bias", [True, False])), "sampling")


def test_a_numerical_decision_is_refused_with_its_label():
    with pytest.raises(StrategyError, match=r"decision 'width' is a Numerical.*categorical"):
        mixed(MutableLinear(3, nascore.Numerical(2, 8, quantize=1, label="width")), "sampling")


@pytest.mark.parametrize("mode", MODES)
def test_an_input_wider_than_every_candidate_is_refused_not_sliced(mode):
    linear, arch = mixed(MutableLinear(nascore.choice("fin", [3, 6]), 4), mode)
    choose(linear, arch, {"fin": 6})
    linear(torch.randn(2, 6))  # the largest candidate: fine
    with pytest.raises(StrategyError, match=r"module 'net.op' \(MutableLinear 'fin'\): the input has 8 features, more than the largest in_features of this "
                       r"nn.Linear \(6\) \(decided by 'fin'\).*add 8 to the candidates of in_features"):
        linear(torch.randn(2, 8))
    conv, arch = mixed(MutableConv2d(nascore.choice("cin", [2, 4]), 3, 3, padding=1), mode)
    choose(conv, arch, {"cin": 2})
    with pytest.raises(StrategyError, match=r"the input has 5 channels, more than the largest in_channels of this nn.Conv2d \(4\)"):
        conv(torch.randn(1, 5, 6, 6))


@pytest.mark.parametrize("mode", MODES)
def test_depthwise_conv_groups_follow_in_channels_with_a_separate_out_channels_choice(mode):
    torch.manual_seed(0)

    def make():
        channels = nascore.choice("c", [4, 8])
        return MutableConv2d(channels, nascore.choice("out", [8, 16]), 3, padding=1, groups=channels)

    op, arch = mixed(make(), mode)
    for sample in ({"c": 4, "out": 8}, {"c": 8, "out": 16}, {"c": 8, "out": 8}, {"c": 4, "out": 16}):
        with nascore.fixed_arch(sample):
            plain = make()
        assert plain.groups == sample["c"]
        choose(op, arch, sample)
        x = torch.randn(2, sample["c"], 5, 5)
        frozen = op.freeze(sample)
        assert type(frozen) is nn.Conv2d and frozen.groups == sample["c"] and frozen.weight.shape == plain.weight.shape
        compare(op(x), frozen(x), channel_dim=1)


def test_channel_and_group_combinations_no_conv_can_have_are_refused_up_front():
    channels = nascore.choice("c", [4, 8])
    space_module = MutableConv2d(channels, nascore.choice("out", [16, 6]), 3, groups=channels)  # the default builds
    with pytest.raises(StrategyError, match=r"net.op.*multiples of groups.*c=4, out=6; c=8, out=6"):
        mixed(space_module, "sampling")


@pytest.mark.parametrize("mode", MODES)
def test_multihead_attention_with_key_and_value_sizes_as_choices(mode):
    torch.manual_seed(0)

    def make():
        return MutableMultiheadAttention(
            nascore.choice("embed", [8, 16]), 2, kdim=nascore.choice("kdim", [6, 16]), vdim=nascore.choice("vdim", [5, 8]),
            batch_first=True,
        )

    op, arch = mixed(make(), mode)
    op.eval()
    for sample in ({"embed": 8, "kdim": 6, "vdim": 5}, {"embed": 16, "kdim": 16, "vdim": 8}, {"embed": 8, "kdim": 16, "vdim": 8}):
        with nascore.fixed_arch(sample):
            plain = make()
        assert (plain.kdim, plain.vdim) == (sample["kdim"], sample["vdim"])
        frozen = op.freeze(sample).eval()
        assert type(frozen) is nn.MultiheadAttention and frozen.state_dict().keys() == plain.state_dict().keys()
        choose(op, arch, sample)
        q = torch.randn(3, 4, sample["embed"])
        k, v = torch.randn(3, 7, sample["kdim"]), torch.randn(3, 7, sample["vdim"])
        output, weights = op(q, k, v)
        expected, expected_weights = frozen(q, k, v)
        compare(output, expected, channel_dim=-1)
        torch.testing.assert_close(weights, expected_weights, rtol=1e-5, atol=1e-5)
