"""`--precision`: fp32 or bf16 autocast (+ channels-last) per config, chosen on a CPU by a short timed probe.

Whether bf16 pays on a CPU depends on its bf16 hardware and on the model, not on a CPU name: 3.9x for Model 3
with AMX (Intel), 1.8x with AVX-512-BF16 and no AMX (AMD EPYC) in issue 12's figures, and a loss where bf16
is emulated. So `auto` on a CPU times a few real training steps of each config both ways (`train_one_epoch` on
random images, the run's own batch size and input size) and keeps bf16 only if it is clearly faster. The
timings are cached per machine (CPU model, its flags, threads, torch version) in
`$XDG_CACHE_HOME/lrfp/precision.json`, so the probe runs once per config and machine -- unless the machine
was busy (load average above its cores: a probe on a shared, loaded CPU is noise), then the next run probes
again. On CUDA `auto` is bf16
(measured on an H200, issue 12).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BF16_MIN_GAIN = 1.10  # bf16 must be at least 10% faster a step: below that, fp32's exactness wins
PROBE_BATCHES = 2  # timed batches per precision, after one warm-up batch (the fastest of two rounds counts)


@dataclass(frozen=True)
class ProbeResult:
    fp32_ms: float  # one training step, milliseconds (the faster of the timed rounds)
    bf16_ms: float
    cached: bool = False

    @property
    def bf16(self) -> bool:
        return choose_bf16(self.fp32_ms, self.bf16_ms)


def choose_bf16(fp32_ms: float, bf16_ms: float) -> bool:
    """bf16 only when a step takes at most 1/BF16_MIN_GAIN of fp32's time."""
    return bf16_ms * BF16_MIN_GAIN <= fp32_ms


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lrfp" / "precision.json"


def machine_key() -> str:
    """CPU model + a hash of its flags + threads + torch version: a probe is valid on this machine only."""
    import torch

    from lrfp.machine import cpu_name

    model, flags = cpu_name(), ""
    try:
        flags = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        pass
    digest = hashlib.sha1(flags.encode()).hexdigest()[:10]
    return f"{model}|flags {digest}|threads {torch.get_num_threads()}|torch {torch.__version__}"


def _config_key(run_cfg: Any) -> str:
    return f"{run_cfg.config_name}|{run_cfg.input_size}px|batch {run_cfg.batch_size}|{run_cfg.optimizer}"


def probe(run_cfg: Any, *, use_cache: bool = True) -> ProbeResult:
    """Time `run_cfg`'s training step in fp32 and in bf16 autocast + channels-last on the CPU (cached)."""
    key = machine_key()
    ckey = _config_key(run_cfg)
    path = cache_path()
    cache: dict[str, Any] = {}
    if use_cache:
        cache = read_cache(path)
        hit = cache.get(key, {}).get(ckey)
        if hit is not None:
            return ProbeResult(hit["fp32_ms"], hit["bf16_ms"], cached=True)
    fp32 = replace(run_cfg, amp=False)  # the run's own fp32 layout (channels-last where the registry says it pays)
    bf16 = replace(run_cfg, amp=True, channels_last=True)
    times = {"fp32": [], "bf16": []}
    trainers = {"fp32": _trainer(fp32), "bf16": _trainer(bf16)}
    for name, step in trainers.items():
        step(1)  # warm-up: allocator, oneDNN kernels
    for _ in range(2):  # alternate, so that load from other jobs hits both alike; keep the fastest
        for name, step in trainers.items():
            times[name].append(step(PROBE_BATCHES))
    result = ProbeResult(round(min(times["fp32"]), 2), round(min(times["bf16"]), 2))
    if use_cache and _busy():
        log.info("not caching the precision probe of %s: the machine is busy (load %.1f), the next run probes again",
                 ckey, os.getloadavg()[0])
    elif use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            cache.setdefault(key, {})[ckey] = {"fp32_ms": result.fp32_ms, "bf16_ms": result.bf16_ms}
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError as e:  # a read-only home only costs the next run another probe
            log.info("cannot cache the precision probe in %s: %s", path, e)
    return result


def read_cache(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """The valid part of the probe cache at `path`: {machine key: {config key: {"fp32_ms", "bf16_ms"}}}.

    A cache is only a saving: a file that is not JSON (truncated), not this shape (`[]`, a string), or an entry
    whose timings are not finite positive numbers (NaN, text, a bool) is left out with a logged warning naming
    the file, so that the probe runs again and the next write replaces it. A missing file is an empty cache.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        log.warning("ignoring the precision cache %s: cannot read it (%s); the probe runs again", path, e)
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:  # json's parse errors, and NaN/Infinity as Python's json reads them are taken below
        log.warning("ignoring the precision cache %s: not valid JSON (%s); the probe runs again", path, e)
        return {}
    if not isinstance(raw, dict):
        log.warning("ignoring the precision cache %s: it holds a JSON %s, not an object of machines; the probe runs "
                    "again", path, type(raw).__name__)
        return {}
    cache: dict[str, dict[str, dict[str, float]]] = {}
    bad = []
    for machine, configs in raw.items():
        if not isinstance(configs, dict):
            bad.append(str(machine))
            continue
        for config, entry in configs.items():
            times = _timings(entry)
            if times is None:
                bad.append(f"{machine}: {config}")
            else:
                cache.setdefault(machine, {})[config] = times
    if bad:
        log.warning("ignoring %d malformed entr%s of the precision cache %s (timings must be positive numbers of "
                    "ms): %s; those configs are probed again", len(bad), "y" if len(bad) == 1 else "ies", path,
                    "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""))
    return cache


def _timings(entry: Any) -> dict[str, float] | None:
    """{"fp32_ms", "bf16_ms"} as floats if `entry` holds both as finite positive numbers, else None."""
    if not isinstance(entry, dict):
        return None
    out = {}
    for name in ("fp32_ms", "bf16_ms"):
        value = entry.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            return None
        out[name] = float(value)
    return out


def _busy() -> bool:
    """More runnable work than cores (1-minute load average): a timing taken now is not worth keeping."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        return False


def _trainer(run_cfg: Any):
    """A callable(batches) -> ms per training step of `run_cfg`, on random uint8 images, with the engine's loop."""
    import torch

    from benchmark.engine import make_optimizer, train_one_epoch
    from benchmark.registry import create_model

    torch.manual_seed(0)
    model = create_model(run_cfg.model, norm=run_cfg.norm, input_size=run_cfg.input_size)
    model = model.to(memory_format=torch.channels_last if run_cfg.channels_last else torch.contiguous_format)
    opt = make_optimizer(model, run_cfg)
    gen = torch.Generator().manual_seed(0)
    b, s = run_cfg.batch_size, run_cfg.input_size
    data = torch.randint(0, 256, (b * PROBE_BATCHES, 3, s, s), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 2, (b * PROBE_BATCHES,), generator=gen)

    def steps(batches: int) -> float:
        t0 = time.perf_counter()
        train_one_epoch(model, opt, data[: b * batches], labels[: b * batches], run_cfg, gen)
        return 1000 * (time.perf_counter() - t0) / batches

    return steps
