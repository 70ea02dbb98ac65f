"""Train-step time of geocryo's ConvLSTM against a PyTorch ConvLSTM of the same architecture.

Both run on the CPU in this process, in alternating rounds, with the same shapes, batch, loss
(masked MSE) and optimiser (Adam). Install the reference with ``pip install -e ".[bench]"``
(PyTorch 2.13, CPU).

Usage::

    python benchmarks/bench_train.py [--batch 8] [--steps 40] [--repeat 5] [--system-allocator]

As the ``geocryo`` command line does, the script first tunes the C allocator
(:func:`geocryo.runtime.tune_allocator`), so that XLA's scratch memory is reused from one step to
the next; both sides run in this process under it. ``--system-allocator`` keeps glibc's defaults.

Prints each side's steady-state step time and achieved GFLOP/s (the same analytic FLOP count for
both: a standard ConvLSTM's convolutions, forward and backward), and last
``train-step ratio: X`` (geocryo / torch; goal X <= 1.0).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geocryo.models.convlstm import StackedConvLSTM
from geocryo.runtime import tune_allocator


def flops(batch, steps, height, width, channels, hidden, layers, kernel=3) -> float:
    """FLOPs of one training step: the gate convolutions, forward (x1) and backward (x2)."""
    total, c = 0.0, channels
    for _ in range(layers):
        total += 2 * batch * steps * height * width * kernel * kernel * (c + hidden) * 4 * hidden
        c = hidden
    return 3 * total


def time_steps(steps, n: int, repeat: int) -> list[float]:
    """Best time per step of each of ``steps`` over ``repeat`` rounds of ``n`` steps.

    The rounds alternate between the contenders, so that a busy spell on a shared machine
    falls on both rather than on whichever ran at the time.
    """
    best = [np.inf] * len(steps)
    for _ in range(repeat):
        for k, step in enumerate(steps):
            t = time.perf_counter()
            for _ in range(n):
                step()
            best[k] = min(best[k], (time.perf_counter() - t) / n)
    return best


def geocryo_step(args, x, y, m):
    model = StackedConvLSTM(features=args.hidden, layers=args.layers, kernel=3)
    head_init = jax.random.normal(jax.random.PRNGKey(1), (args.hidden, y.shape[-1])) * 0.1
    params = {"encoder": model.init(jax.random.PRNGKey(0), x), "head": head_init}
    optimizer = optax.adam(1e-3)

    @jax.jit
    def train_step(params, state, x, y, m):
        def loss_fn(p):
            pred = model.apply(p["encoder"], x) @ p["head"]
            return jnp.sum(m * (pred - y) ** 2) / jnp.maximum(m.sum(), 1)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    carry = [params, optimizer.init(params)]

    def step():
        carry[0], carry[1], loss = train_step(carry[0], carry[1], x, y, m)
        loss.block_until_ready()

    step()  # compile
    return step


def torch_step(args, x, y, m):
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count() or 1)

    class Cell(nn.Module):
        def __init__(self, cin, hidden):
            super().__init__()
            self.conv = nn.Conv2d(cin + hidden, 4 * hidden, 3, padding=1)
            self.hidden = hidden

        def forward(self, x, h, c):
            i, f, o, g = torch.split(self.conv(torch.cat([x, h], 1)), self.hidden, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [args.channels] + [args.hidden] * (args.layers - 1)
            self.cells = nn.ModuleList(Cell(c, args.hidden) for c in sizes)
            self.head = nn.Conv2d(args.hidden, y.shape[-1], 1, bias=False)

        def forward(self, x):  # (B, T, C, H, W)
            sequence = list(x.unbind(1))
            for cell in self.cells:
                h = c = x.new_zeros(x.shape[0], args.hidden, *x.shape[-2:])
                out = []
                for xt in sequence:
                    h, c = cell(xt, h, c)
                    out.append(h)
                sequence = out
            return self.head(sequence[-1])

    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    tx = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 2)))
    ty = torch.from_numpy(np.ascontiguousarray(np.moveaxis(y, -1, 1)))
    tm = torch.from_numpy(np.ascontiguousarray(np.moveaxis(m, -1, 1)))

    def step():
        optimizer.zero_grad()
        loss = ((net(tx) - ty) ** 2 * tm).sum() / tm.sum().clamp(min=1)
        loss.backward()
        optimizer.step()

    step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lookback", type=int, default=12)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--system-allocator", action="store_true", help="keep glibc's allocator defaults"
    )
    args = parser.parse_args()
    tuned = not args.system_allocator and tune_allocator()  # before JAX computes anything
    rng = np.random.default_rng(0)
    shape = (args.batch, args.lookback, args.patch, args.patch)
    x = rng.standard_normal((*shape, args.channels), dtype=np.float32)
    y = rng.standard_normal((args.batch, args.patch, args.patch, args.targets), dtype=np.float32)
    m = (rng.uniform(size=y.shape) < 0.5).astype(np.float32)
    work = flops(
        args.batch, args.lookback, args.patch, args.patch, args.channels, args.hidden, args.layers
    )
    print(
        f"ConvLSTM {args.layers} x {args.hidden} channels, batch {args.batch}, input "
        f"{args.lookback} x {args.patch} x {args.patch} x {args.channels}; "
        f"{work / 1e9:.3f} GFLOP per step; jax on {jax.devices()[0].platform}; "
        f"allocator {'tuned by geocryo' if tuned else 'system defaults'}"
    )
    ours, theirs = time_steps(
        [geocryo_step(args, x, y, m), torch_step(args, x, y, m)], args.steps, args.repeat
    )
    print(f"geocryo (JAX/Flax): {ours * 1e3:.2f} ms/step, {work / ours / 1e9:.2f} GFLOP/s")
    print(f"PyTorch:            {theirs * 1e3:.2f} ms/step, {work / theirs / 1e9:.2f} GFLOP/s")
    print(f"train-step ratio: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
