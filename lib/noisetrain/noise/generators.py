"""Noise generators of Rusak et al. (2020), section 3.2.1 and appendix A.

A generator maps i.i.d. N(0, 1) noise ``z`` to a noise sample ``delta`` of an image's shape:
a stack of convolutions (20 channels, ReLU) ending in a convolution back to ``C`` channels, plus
a residual connection from ``z`` to the output. With 1x1 kernels everywhere every output pixel
depends only on the input noise at that pixel, so the learned distribution factorises over
pixels (ANT^1x1, Table 6). The ``"3x3"`` variant puts 3x3 kernels in the second layer, which
limits the correlation length of the noise to 3x3 pixels (ANT^3x3, Table 7).

The generator's output is a direction only; its size is fixed afterwards by
:func:`noisetrain.rescaling.rescale_to_norm`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from noisetrain.errors import InputError
from noisetrain.noise import piecewise
from noisetrain.threads import one_thread

HIDDEN_CHANNELS = 20  # Tables 6 and 7
MAX_DEPTH = 5  # Table 16 studies depths 1..5
INIT_STD = 0.01
KERNELS = ("1x1", "3x3")


class NoiseGenerator(nn.Module):
    """Residual convolutional noise generator.

    Args:
        channels: colour channels ``C`` of the images (1 for MNIST, 3 for ImageNet).
        depth: number of convolutional layers, 1..5 (Table 16; the paper's default is 4).
            Depth 1 is a single ``C -> C`` convolution; depth ``d >= 2`` is ``C -> 20``,
            ``d - 2`` times ``20 -> 20``, then ``20 -> C``. ReLU follows every convolution
            but the last. For ``C = 3`` this gives 12, 143, 563, 983, 1403 parameters.
        kernel: ``"1x1"`` (spatially independent noise) or ``"3x3"`` (the second layer uses
            3x3 kernels; it needs ``depth >= 2``, as a depth-1 generator has no second layer).
        rng: optional ``torch.Generator`` (on CPU) for the weight initialisation, so that a
            generator can be created reproducibly without touching the global RNG.

    Weights are drawn from N(0, 0.01^2) and biases are zero, so that a new generator outputs
    ``z`` plus a tiny perturbation, i.e. (almost exactly) a standard Gaussian (section 3.2.1:
    "initialized such that the noise generator outputs a Gaussian distribution").

    The 3x3 convolution uses no zero padding (appendix A: "no padding"): instead the input
    noise is drawn one pixel larger on each side (``input_shape``), the layers before the 3x3
    layer work at ``(H + 2) x (W + 2)`` and the 3x3 layer brings it back to ``H x W``. Zero
    padding would make border pixels follow a different distribution from interior ones.
    """

    def __init__(
        self,
        channels: int,
        depth: int = 4,
        kernel: str = "1x1",
        *,
        rng: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise InputError(f"channels must be a positive int, got {channels!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise InputError(f"depth must be an int in 1..{MAX_DEPTH}, got {depth!r}")
        if kernel not in KERNELS:
            raise InputError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if kernel == "3x3" and depth < 2:
            raise InputError(
                "kernel='3x3' needs depth >= 2: the 3x3 kernels sit in the second layer, "
                "which a depth-1 generator does not have"
            )
        self.channels = channels
        self.depth = depth
        self.kernel = kernel
        # Pixels of input noise lost on each side by the unpadded 3x3 convolution.
        self.pad = 1 if kernel == "3x3" else 0

        widths = [channels] + [HIDDEN_CHANNELS] * (depth - 1) + [channels]
        layers = []
        for i in range(depth):
            k = 3 if (kernel == "3x3" and i == 1) else 1
            layers.append(nn.Conv2d(widths[i], widths[i + 1], kernel_size=k, padding=0))
        self.convs = nn.ModuleList(layers)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: torch.Generator | None = None) -> None:
        """Re-draw weights from N(0, INIT_STD^2) and zero the biases."""
        with torch.no_grad():
            for conv in self.convs:
                if rng is not None and rng.device != conv.weight.device:
                    # Draw on the generator's device, then copy, so a CPU seed is reproducible
                    # whatever device the module lives on.
                    w = torch.empty(conv.weight.shape, dtype=conv.weight.dtype, device=rng.device)
                    conv.weight.copy_(nn.init.normal_(w, 0.0, INIT_STD, generator=rng))
                else:
                    nn.init.normal_(conv.weight, 0.0, INIT_STD, generator=rng)
                conv.bias.zero_()

    def input_shape(self, shape: Sequence[int]) -> torch.Size:
        """Shape of the input noise ``z`` needed for an output of ``shape`` (N, C, H, W)."""
        shape = torch.Size(shape)
        if len(shape) != 4:
            raise InputError(f"expected an NCHW shape, got {tuple(shape)}")
        n, c, h, w = shape
        if c != self.channels:
            raise InputError(f"generator has {self.channels} channels, shape has {c}")
        return torch.Size((n, c, h + 2 * self.pad, w + 2 * self.pad))

    def transform(self, z: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Map input noise ``z`` (shape ``input_shape(...)``) to the output noise.

        ``params`` (a state dict of this architecture) evaluates another state of the generator
        without loading it, e.g. a replay-bank state; by default the generator's own weights.
        """
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise InputError(f"z must be N x {self.channels} x H x W, got {tuple(z.shape)}")
        if z.shape[2] <= 2 * self.pad or z.shape[3] <= 2 * self.pad:
            raise InputError(f"z is too small for kernel {self.kernel}: {tuple(z.shape)}")
        return self.as_function(params)(z)

    def as_function(self, params: dict[str, torch.Tensor] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """The map ``z -> delta`` for weights ``params`` (default: the generator's own), in the
        fastest exact form; differentiable with respect to the weights.

        On the CPU a single-channel 1x1 generator is a scalar piecewise-linear function, evaluated per
        pixel from its intervals (``noisetrain.piecewise``; ~8x faster on MNIST). A multi-channel 1x1
        generator on the CPU runs every layer on one block of pixels at a time (:class:`_PixelMLP`;
        on a batch of 16 ImageNet crops, forward 5-8x and forward with backward 4-5x faster).
        Otherwise the 1x1 convolutions run as matrix products over pixels: on CPU, oneDNN's
        convolutions with 1..20 channels are several times slower than one (pixels x channels)
        matmul. All equal :meth:`reference_transform` up to float rounding (the tests check it).
        Preparing the function once for many batches saves finding the breakpoints each time.
        """
        weights = [self._weights(i, params) for i in range(self.depth)]
        on_cpu = weights[0][0].device.type == "cpu"
        if self.kernel == "1x1" and self.channels == 1 and on_cpu:  # on a GPU its search would wait for the device
            return piecewise.pieces([(w.flatten(1), b) for w, b in weights])
        if self.kernel == "1x1" and on_cpu:
            flat = [t for layer in weights for t in layer]
            return lambda z: _PixelMLP.apply(z, *flat)
        return self.dense_function(params)

    def dense_function(self, params: dict[str, torch.Tensor] | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """The map ``z -> delta`` as matrix products over pixels (1x1 layers) and convolutions (3x3): on a
        GPU every generator's form, on the CPU a 3x3 generator's."""
        return functools.partial(self._dense_transform, [self._weights(i, params) for i in range(self.depth)])

    def transform_each(self, z: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each image's noise from weights of its own: ``params`` holds every tensor of this
        architecture's state dict with a leading dimension of ``len(z)`` (image ``i`` gets
        ``params[k][i]``). ANT's replay draws a bank state per image; this runs them all in one pass
        per layer, however many states are drawn (a 1x1 layer is one batched matrix product over
        pixels, a 3x3 layer one grouped convolution), where a call per state would launch a dozen
        operations each (a GPU's small steps wait for those launches). The values are
        :meth:`transform`'s under each image's weights, up to float rounding."""
        n = z.shape[0]
        if z.dim() != 4 or z.shape[1] != self.channels:
            raise InputError(f"z must be N x {self.channels} x H x W, got {tuple(z.shape)}")
        h = z
        for i in range(self.depth):
            w, b = self._weights(i, params)
            if w.shape[1:3] != self.convs[i].weight.shape[:2] or len(w) != n:
                raise InputError(f"params must stack {n} states of this generator, got {tuple(w.shape)} for layer {i}")
            out, _, k, _ = w.shape[1:]
            if k == 1:
                h = torch.baddbmm(b[:, :, None], w.flatten(2), h.flatten(2)).view(n, out, *h.shape[2:])
            else:  # image i's input channels meet only image i's kernels: groups = images
                h = F.conv2d(h.reshape(1, -1, *h.shape[2:]), w.flatten(0, 1), b.flatten(), groups=n)
                h = h.view(n, out, *h.shape[2:])
            if i < self.depth - 1:
                h = torch.relu(h)
        return h + self._residual(z)

    def _weights(self, i: int, params: dict[str, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
        if params is None:
            return self.convs[i].weight, self.convs[i].bias
        return params[f"convs.{i}.weight"], params[f"convs.{i}.bias"]

    def _dense_transform(self, weights: list[tuple[torch.Tensor, torch.Tensor]], z: torch.Tensor) -> torch.Tensor:
        h = z.permute(0, 2, 3, 1)  # NHWC: channels last, so a 1x1 convolution is F.linear
        for i, (w, b) in enumerate(weights):
            if w.shape[2:] == (1, 1):
                h = F.linear(h, w.flatten(1), b)
            else:  # no padding, as in reference_transform (z carries the border)
                h = F.conv2d(h.permute(0, 3, 1, 2), w, b).permute(0, 2, 3, 1)
            if i < self.depth - 1:
                h = torch.relu(h)
        # Back to a contiguous NCHW tensor, the layout of the images it is added to.
        return (h.permute(0, 3, 1, 2) + self._residual(z)).contiguous()

    def _residual(self, z: torch.Tensor) -> torch.Tensor:
        p = self.pad
        return z[:, :, p : z.shape[2] - p, p : z.shape[3] - p] if p else z

    def reference_transform(self, z: torch.Tensor) -> torch.Tensor:
        """The definition, layer by layer with the module's convolutions (slow; for tests)."""
        h = z
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = torch.relu(h)
        return h + self._residual(z)

    def forward(
        self,
        x: torch.Tensor | Sequence[int],
        rng: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw one noise sample per image of the shape of ``x``.

        ``x`` is a reference batch (only its shape is used) or an NCHW shape. The noise is
        made on the parameters' device and dtype; ``rng`` must live on that device, ``None``
        uses the global RNG.
        """
        shape = x.shape if isinstance(x, torch.Tensor) else torch.Size(x)
        p = self.convs[0].weight
        z = torch.randn(self.input_shape(shape), generator=rng, device=p.device, dtype=p.dtype)
        return self.transform(z)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, depth={self.depth}, kernel={self.kernel!r}"


# Pixels per block of _PixelMLP: a block's 20-channel activations (80 kB per thousand pixels) stay
# in the cache from one layer to the next. Measured on one core: 6-25k pixels about equally fast, 2k
# pixels 2.5x slower (more, smaller operations).
BLOCK_PIXELS = 12544


class _PixelMLP(torch.autograd.Function):
    """A 1x1 generator ``z -> delta`` on the CPU, block by block: every layer of a block of pixels
    runs while its activations are still in the cache.

    Layer by layer over a whole ImageNet batch, each 20-channel activation (64 MB at batch 16)
    goes to memory and back several times (matmul, ReLU, its backward), which costs more than the
    arithmetic. Here a block's activations never leave the cache: forward keeps only ``z``, and
    backward recomputes a block's activations before taking its gradients (one more forward, far
    cheaper than the memory traffic it saves). Each layer is one batched matmul over the block's
    pixels, in the NCHW layout of ``z`` (no transposes). The blocks are shared out among torch's
    intra-op thread count of Python threads, each running its operations on one thread (see
    :func:`_in_threads`). Arguments: ``z`` (N, C, H, W), then each layer's weight (out, in, 1, 1)
    and bias; ReLU after every layer but the last, plus ``z``.
    """

    @staticmethod
    def forward(ctx, z, *params):
        weights, biases = _layers(params)
        flat = z.reshape(z.shape[0], z.shape[1], -1)
        out = torch.empty_like(flat)

        def run(blocks):
            for block in blocks:
                h = _hidden(flat[block], weights, biases)[-1]
                h = torch.baddbmm(biases[-1], weights[-1].expand(h.shape[0], -1, -1), h)
                torch.add(h, flat[block], out=out[block])

        _in_threads(run, _blocks(flat))
        ctx.save_for_backward(z, *params)
        return out.view(z.shape)

    @staticmethod
    def backward(ctx, grad):
        z, *params = ctx.saved_tensors
        weights, biases = _layers(params)
        flat, grad = z.reshape(z.shape[0], z.shape[1], -1), grad.reshape(z.shape[0], z.shape[1], -1)
        grad_z = torch.empty_like(flat) if ctx.needs_input_grad[0] else None
        # Each thread sums its own blocks' weight gradients; the parts are added in a fixed order.
        parts = _in_threads(lambda blocks: _block_gradients(flat, grad, grad_z, weights, biases, blocks), _blocks(flat))
        sums = [sum(part[i] for part in parts) for i in range(2 * len(weights))]
        grads = [t.view(p.shape) for t, p in zip(sums, params)]
        return (None if grad_z is None else grad_z.view(z.shape), *grads)


def _block_gradients(flat: torch.Tensor, grad: torch.Tensor, grad_z: torch.Tensor | None, weights: list[torch.Tensor],
                     biases: list[torch.Tensor], blocks: list[tuple[slice, slice, slice]]) -> list[torch.Tensor]:
    """Gradients (w0, b0, w1, b1, ...) of ``blocks``' pixels; writes their part of ``grad_z`` when given."""
    grad_w = [torch.zeros_like(w) for w in weights]
    grad_b = [torch.zeros_like(b) for b in biases]
    for block in blocks:
        acts = _hidden(flat[block], weights, biases)  # input of each layer
        g = grad[block]
        for i in range(len(weights) - 1, -1, -1):
            grad_w[i] += torch.bmm(g, acts[i].transpose(1, 2)).sum(0)
            grad_b[i] += g.sum(dim=(0, 2))[:, None]
            if i > 0 or grad_z is not None:
                g_in = torch.bmm(weights[i].t().expand(g.shape[0], -1, -1), g)
                g = torch.ops.aten.threshold_backward(g_in, acts[i], 0.0) if i > 0 else g_in
        if grad_z is not None:
            torch.add(g, grad[block], out=grad_z[block])  # the residual passes grad on unchanged
    return [t for w, b in zip(grad_w, grad_b) for t in (w, b.view(-1))]


def _in_threads(work: Callable[[list], object], blocks: list) -> list:
    """``work(part)`` for consecutive parts of ``blocks``, one per intra-op thread torch is set to use
    (one inside :func:`one_thread`, as in ANT's forward passes), each on a Python thread of its own;
    their results, in order.

    A block's operations are small (~1e5 values), too small for OpenMP: it synchronises its threads
    at every operation, and when another process holds one of the cores (the data loader's workers
    in training) each one can wait for a time slice (measured at batch 16 on two cores: the
    generator's forward and backward took 1-20 s on two threads, 0.2 s on one). So every operation
    runs on one thread (:func:`one_thread`) and the parallelism is over blocks: torch releases the
    GIL in its operations, and Python threads never wait for one another mid-way. On two cores this
    takes 0.1 s where idle, 0.2 s where another process holds a core.
    """
    threads = min(torch.get_num_threads(), len(blocks))
    cuts = [len(blocks) * k // threads for k in range(threads + 1)]
    parts = [blocks[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    results, errors = [None] * threads, []
    inference = torch.is_inference_mode_enabled()

    def run(k: int) -> None:
        # Grad and autocast modes are per thread: every thread computes alike, in full precision,
        # without autograd (the gradients are computed here), in the caller's inference mode.
        try:
            torch.set_num_threads(1)  # OpenMP's thread count is per thread, MKL's too: this one's
            with torch.inference_mode(inference), torch.no_grad(), torch.autocast("cpu", enabled=False):
                results[k] = work(parts[k])
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    with one_thread():
        helpers = [threading.Thread(target=run, args=(k,)) for k in range(1, threads)]
        for helper in helpers:
            helper.start()
        run(0)
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
    return results


def _layers(params: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights as (out, in) matrices and biases as (out, 1) columns, from (w, b, w, b, ...)."""
    return [w.flatten(1) for w in params[0::2]], [b[:, None] for b in params[1::2]]


def _hidden(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> list[torch.Tensor]:
    """The block's input and every hidden activation (after ReLU), each (images, channels, pixels)."""
    acts = [h]
    for w, b in zip(weights[:-1], biases[:-1]):
        acts.append(torch.baddbmm(b, w.expand(h.shape[0], -1, -1), acts[-1]).relu_())
    return acts


def _blocks(flat: torch.Tensor) -> list[tuple[slice, slice, slice]]:
    """Index tuples of (N, C, P) ``flat`` that cut it into blocks of about BLOCK_PIXELS pixels:
    column ranges of one image, or whole images, several to a block when they are small."""
    images, pixels = flat.shape[0], flat.shape[2]
    if pixels >= BLOCK_PIXELS:
        return [(slice(n, n + 1), slice(None), slice(c, c + BLOCK_PIXELS))
                for n in range(images) for c in range(0, pixels, BLOCK_PIXELS)]
    per = BLOCK_PIXELS // pixels
    return [(slice(n, n + per), slice(None), slice(None)) for n in range(0, images, per)]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (Table 16's 'number of parameters')."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
