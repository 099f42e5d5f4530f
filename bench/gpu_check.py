"""One command for a GPU machine: the GPU tests, GPU against CPU throughput, and the cost of
deterministic CUDA.

1. tests: `pytest -m gpu` (tests/test_gpu.py): CUDA render == CPU render; the hand-written
   backward against autograd on CUDA in float64; the fit's PSNR; mixed-precision training with
   finite losses; SIGKILL and resume under AMP; torchrun on one GPU for extract and train.
2. extraction of default-size images (params.yaml's prepare and extract settings: 64 x 64,
   512 Gaussians) on the CPU and on the GPU at a few batch sizes: images/s, mean PSNR, ratios;
   then the GPU fit alone and the CPU ordering alone, the two parts whose slower one bounds it.
3. training epochs of the default model with its objective (render term, AMP on CUDA):
   samples/s on both.
4. determinism on CUDA: whether two identical runs give the same bits, without and with
   torch.use_deterministic_algorithms, and what the deterministic mode costs.
5. the whole default pipeline (every stage's command from dvc.yaml, without dvc) on the GPU.
Prints the project's GPU goals beside the measurements. Without CUDA it says so in one line and
runs the CPU part of 2 and 3 only (about a minute on 2 cores), exiting 0.

Usage: python bench/gpu_check.py [--params params.yaml] [--cpu-images 32] [--gpu-images 3000]
       [--epochs 3] [--skip-tests] [--skip-pipeline]
"""

from __future__ import annotations

import os

# cuBLAS is deterministic only with a fixed workspace, which must be chosen before CUDA starts
# (part 4); it applies to every CUDA measurement of this run.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # this tree's package, as the stage scripts do

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from gaussvae.core.distributed import Dist  # noqa: E402
from gaussvae.core.params import Params, load_params  # noqa: E402
from gaussvae.core.store import GaussianSet, ImageSet  # noqa: E402
from gaussvae.gaussians.extraction import extract, ordering_workers  # noqa: E402
from gaussvae.gaussians.fit import fit_images  # noqa: E402
from gaussvae.gaussians.slots import grid_slots, order_gaussians  # noqa: E402
from gaussvae.images.prepare import prepare_images  # noqa: E402
from gaussvae.vae.job import gaussian_job  # noqa: E402
from gaussvae.vae.loss import beta_at  # noqa: E402
from gaussvae.vae.normalization import compute_stats  # noqa: E402
from gaussvae.vae.symmetry import symmetry_orders  # noqa: E402
from gaussvae.vae.trainer import Trainer, make_trainer  # noqa: E402

CPU = torch.device("cpu")
GOALS = ("goals: extraction >= 2,000 images/s on one GPU at the CPU path's PSNR; "
         "training >= 20x the CPU's samples/s; the whole default pipeline well under a minute")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def subset(images: ImageSet, n: int) -> ImageSet:
    return dataclasses.replace(images, images=images.images[:n], split=images.split[:n],
                               sources=images.sources[:n])


def run_gpu_tests() -> bool:
    print("[tests] pytest -m gpu", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p",
                             "no:cacheprovider", "tests/test_gpu.py"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    print(f"  {lines[-1] if lines else 'no output'} ({time.perf_counter() - start:.0f}s)")
    for line in failures:
        print(f"  {line}")
    if result.returncode != 0 and not failures:
        print(result.stdout[-3000:] + result.stderr[-3000:])
    return result.returncode == 0


def extraction_rate(images: ImageSet, settings,
                    device: torch.device) -> tuple[float, GaussianSet]:
    """(images/s, result) of extract(), after a one-batch warm-up."""
    extract(subset(images, settings.batch_size), settings, device)
    seconds, result = timed(lambda: extract(images, settings, device), device)
    return len(images.images) / seconds, result


def fit_and_order_rates(images: ImageSet, settings, device: torch.device) -> tuple[float, float]:
    """(images/s of the fit alone on ``device``, images/s of the ordering alone per thread)."""
    slots_np = grid_slots(settings.num_gaussians)
    slots = torch.from_numpy(slots_np).to(device)
    batches = [torch.from_numpy(images.images[i:i + settings.batch_size]).to(device).float()
               / 255.0 for i in range(0, len(images.images), settings.batch_size)]
    fit_images(batches[0], slots, settings)  # warm-up
    seconds, results = timed(lambda: [fit_images(b, slots, settings) for b in batches], device)
    fitted = np.concatenate([r.gaussians.cpu().numpy() for r in results])[:256]
    start = time.perf_counter()
    for g in fitted:
        order_gaussians(g, settings.ordering, slots_np)
    return len(images.images) / seconds, len(fitted) / (time.perf_counter() - start)


def training_setup(params: Params, fitted: GaussianSet, n: int, device: torch.device,
                   batch_size: int | None = None) -> Trainer:
    """The train stage's trainer (make_trainer) on ``n`` samples made by repeating the fitted
    set (throughput does not depend on which samples), at ``batch_size`` (default: params')."""
    if batch_size is not None:
        params = params.model_copy(update={
            "train": params.train.model_copy(update={"batch_size": batch_size})})
    reps = -(-n // len(fitted.gaussians))
    data = dataclasses.replace(fitted, gaussians=np.concatenate([fitted.gaussians] * reps)[:n],
                               split=np.zeros(n, np.uint8))
    s = params.normalize
    stats = compute_stats(data.gaussians, s.min_std, s.per_position, s.encoding)
    orders = None
    if params.train.symmetries > 1:  # the symmetries stage's work, for the fits repeated
        orders = symmetry_orders(fitted.gaussians, fitted.attrs["ordering"],
                                 grid_slots(fitted.gaussians.shape[1]), params.train.symmetries)
        orders = np.concatenate([orders] * reps)[:n]
    job = gaussian_job(params, data, stats, orders, None, device)
    return make_trainer(params, job, Dist(device=device))


def train_epochs(trainer: Trainer, epochs: int) -> float:
    """Seconds for ``epochs`` of the trainer's epochs (Trainer.run_epoch, as the stage runs)."""
    t = trainer.params.train
    beta = beta_at(t.beta_warmup_epochs, trainer.params.max_beta, t.beta_warmup_epochs)

    def run() -> None:
        for epoch in range(epochs):
            trainer.run_epoch(epoch, beta)

    return timed(run, trainer.dist.device)[0]


def training_rate(params: Params, fitted: GaussianSet, n: int, epochs: int,
                  device: torch.device, batch_size: int) -> float:
    trainer = training_setup(params, fitted, n, device, batch_size)
    train_epochs(trainer, 1)  # warm-up (allocator, cuDNN choices)
    return epochs * n / train_epochs(trainer, epochs)


def model_bits(trainer: Trainer) -> bytes:
    return b"".join(v.detach().cpu().numpy().tobytes()
                    for v in trainer.model.state_dict().values())


def determinism(params: Params, images: ImageSet, fitted: GaussianSet,
                device: torch.device) -> None:
    """Two identical runs of extraction and of training, without and with deterministic
    algorithms: same bits?, and the time of the second mode against the first."""
    settings = params.extract
    times = {}
    for mode in (False, True):
        torch.use_deterministic_algorithms(mode)
        name = "deterministic" if mode else "default"
        try:
            runs = [timed(lambda: extract(images, settings, device), device) for _ in range(2)]
            same_fit = np.array_equal(runs[0][1].gaussians, runs[1][1].gaussians)
            bits, train_seconds = [], 0.0
            for _ in range(2):
                trainer = training_setup(params, fitted, 512, device)
                train_seconds += train_epochs(trainer, 2)
                bits.append(model_bits(trainer))
            times[mode] = (runs[0][0] + runs[1][0], train_seconds)
            print(f"  {name:13s}: two extractions identical: {'yes' if same_fit else 'NO'}; "
                  f"two trainings identical: {'yes' if bits[0] == bits[1] else 'NO'}")
        except RuntimeError as err:  # an op without a deterministic CUDA implementation
            print(f"  {name:13s}: fails: {str(err).splitlines()[0]}")
    torch.use_deterministic_algorithms(False)
    if len(times) == 2:
        print(f"  deterministic / default time: extraction "
              f"{times[True][0] / times[False][0]:.2f}x, training "
              f"{times[True][1] / times[False][1]:.2f}x")


def pipeline(params_path: Path, timeout: float) -> float | None:
    """Every stage's command from dvc.yaml, in order, in a scratch folder: seconds each."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    work = Path(tempfile.mkdtemp(prefix="gaussvae-pipeline-"))
    shutil.copy(params_path, work / "params.yaml")
    total, parts = 0.0, []
    try:
        for name, stage in stages.items():
            cmd = shlex.split(stage["cmd"])
            cmd = [sys.executable, str(REPO / cmd[1]), *cmd[2:]]  # python stages/x.py ...
            start = time.perf_counter()
            try:
                result = subprocess.run(cmd, cwd=work, capture_output=True, text=True,
                                        timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"  {', '.join(parts)}; {name} stopped at the {timeout:.0f}s limit")
                return None
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                print(f"  {name} failed: {result.stderr.strip().splitlines()[-1:]}")
                return None
            total += seconds
            parts.append(f"{name} {seconds:.1f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"  {', '.join(parts)}: {total:.1f}s in all")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--cpu-images", type=int, default=32)
    parser.add_argument("--gpu-images", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3, help="timed GPU training epochs")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    params = load_params(args.params)
    cuda = torch.cuda.is_available()
    gpu = torch.device("cuda") if cuda else None
    if not cuda:
        print("no CUDA device: GPU tests and GPU timings skipped; CPU part only")
    else:
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
              f"{os.cpu_count()} CPU cores")
    print(GOALS)
    ok = True
    if cuda and not args.skip_tests:
        ok = run_gpu_tests()

    settings = params.extract
    n_images = args.gpu_images if cuda else args.cpu_images
    prep = params.prepare.model_copy(update={"num_images": max(n_images, args.cpu_images),
                                             "source": "synthetic"})
    images = prepare_images(prep)
    print(f"[extraction] {prep.image_size}x{prep.image_size} images, {settings.num_gaussians} "
          f"Gaussians, {settings.steps} steps, ordering {settings.ordering}", flush=True)
    cpu_ips, fitted = extraction_rate(subset(images, args.cpu_images), settings, CPU)
    cpu_psnr = float(fitted.psnr.mean())
    print(f"  cpu  batch {settings.batch_size:4d}: {cpu_ips:8.1f} images/s, mean PSNR "
          f"{cpu_psnr:.2f} dB ({args.cpu_images} images, {torch.get_num_threads()} threads)")
    if cuda:
        best = (0.0, 0)
        for batch in sorted({settings.batch_size, 128, 512}):
            s = settings.model_copy(update={"batch_size": batch})
            ips, result = extraction_rate(images, s, gpu)
            same = float(result.psnr[:args.cpu_images].mean())
            print(f"  cuda batch {batch:4d}: {ips:8.1f} images/s, mean PSNR "
                  f"{float(result.psnr.mean()):.2f} dB ({len(images.images)} images; "
                  f"{same - cpu_psnr:+.3f} dB against the CPU on its {args.cpu_images}); "
                  f"{ips / cpu_ips:.1f}x cpu", flush=True)
            best = max(best, (ips, batch))
        fit_ips, order_ips = fit_and_order_rates(
            images, settings.model_copy(update={"batch_size": best[1]}), gpu)
        workers = ordering_workers(gpu)
        print(f"  cuda fit alone (batch {best[1]}): {fit_ips:.0f} images/s; CPU ordering alone: "
              f"{order_ips:.0f} images/s per thread x {workers} threads")
        print(f"  goal >= 2000 images/s: best {best[0]:.0f} at batch {best[1]} -> "
              f"{'met' if best[0] >= 2000 else 'NOT met'}")

    n_train = int(round(params.prepare.num_images
                        * (1 - params.prepare.val_fraction - params.prepare.test_fraction)))
    t = params.train
    print(f"[training] {t.arch}, batch {t.batch_size}, render term "
          f"{'on' if t.render_loss_weight > 0 else 'off'}", flush=True)
    cpu_sps = training_rate(params, fitted, 256, 1, CPU, t.batch_size)
    print(f"  cpu  batch {t.batch_size:4d}: {cpu_sps:8.0f} samples/s (1 epoch of 256)")
    if cuda:
        for batch in sorted({t.batch_size, 256}):
            sps = training_rate(params, fitted, n_train, args.epochs, gpu, batch)
            print(f"  cuda batch {batch:4d}: {sps:8.0f} samples/s ({args.epochs} epochs of "
                  f"{n_train}); {sps / cpu_sps:.1f}x cpu", flush=True)
            if batch == t.batch_size:
                print(f"  goal >= 20x cpu at the default batch: "
                      f"{'met' if sps >= 20 * cpu_sps else 'NOT met'}")
        print("[determinism] CUDA, 256 images and 2 epochs of 512 samples, twice per mode",
              flush=True)
        determinism(params, subset(images, 256), fitted, gpu)
        if not args.skip_pipeline:
            print("[pipeline] every dvc.yaml stage, default params, on this GPU", flush=True)
            seconds = pipeline(Path(args.params), timeout=120)  # the check: <= 5 min
            if seconds is not None:
                print(f"  goal well under a minute (< 30 s): "
                      f"{'met' if seconds < 30 else 'NOT met'}")
    print(("GPU tests " + ("passed" if ok else "FAILED")) if cuda else "done (CPU only)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
