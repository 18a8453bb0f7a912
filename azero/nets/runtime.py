"""Where and how torch runs: device choice, CPU thread counts, inference precision."""
from __future__ import annotations

import functools
import os

import torch


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_torch_threads(threads: int | None = None, *, processes: int = 1) -> int:
    """Set torch's intra-op threads to `threads`, or by default to this process's share of the CPUs
    when `processes` processes run side by side (at least 1). Inter-op threads are set to 1 where
    torch still allows it (it refuses once parallel work has started): our graphs are sequential.
    Returns the intra-op thread count now in force."""
    if threads is None:
        threads = max(1, available_cpus() // max(1, processes))
    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed for this process
    return torch.get_num_threads()


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda if available else cpu; "cpu", "cuda", "cuda:N" as given (ValueError when a
    requested cuda device does not exist)."""
    if isinstance(name, torch.device):
        name = str(name)
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available "
                             f"(torch {torch.__version__}); use device auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type not in ("cpu", "mps"):
        raise ValueError(f"unsupported device {name!r}: expected auto, cpu, cuda or cuda:N")
    return device


def training_autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training steps under train.amp: bf16 where the device computes it
    fast (a CUDA GPU with bf16; a CPU with native bf16, where a 4x48 Connect Four step and a
    MuZero K=5 step both ran 1.9x fp32's rate on the 2-core AVX512-BF16 box), else None (fp32).
    Never fp16: training in fp16 would need loss scaling."""
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    dtype = autocast_dtype(device)
    return dtype if dtype is torch.bfloat16 else None


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of inference on this device: bf16 on cuda where the GPU supports it,
    else fp16; None on a CPU (a CPU snapshot casts its weights instead: inference_weight_dtype;
    training: training_autocast_dtype)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


PRECISION_ENV = "AZERO_INFERENCE_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX-BF16: oneDNN's bf16
    convolutions then run ~2x fp32's speed); False where it cannot tell (non-Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def inference_weight_dtype(device: torch.device, precision: str | None = None) -> torch.dtype:
    """The dtype an inference snapshot's weights are cast to on `device`. precision: "fp32",
    "bf16", or "auto" (the default; the environment variable AZERO_INFERENCE_PRECISION overrides
    it for every command). auto: bf16 on a CPU with native bf16 and on a CUDA GPU that supports
    bf16, else fp32. A snapshot with bf16 weights runs without autocast: on the H200, autocast
    at every call gave 0.8-0.9x fp32's rate below batch 1024 (BENCHMARKS.md, the GPU path), the
    cost of casting the weights again each call; a cast copy pays it once. A GPU without bf16
    keeps fp32 weights under fp16 autocast (autocast_dtype)."""
    precision = (precision or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if precision not in PRECISIONS:
        raise ValueError(f"inference precision {precision!r} (argument or ${PRECISION_ENV}): "
                         f"expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or device.type not in ("cpu", "cuda"):
        return torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if precision == "bf16" or cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def snapshot_autocast_dtype(device: torch.device, weights: torch.dtype,
                            amp: bool = True) -> torch.dtype | None:
    """The autocast dtype of a snapshot whose weights are `weights`: None once the weights are
    cast (bf16 copies run as they are), else inference's autocast_dtype under amp."""
    if weights != torch.float32 or not amp:
        return None
    return autocast_dtype(device)
