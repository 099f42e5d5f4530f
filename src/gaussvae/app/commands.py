"""The `gaussvae` command: the trained model from the shell.

    gaussvae fit IMAGE_OR_FOLDER... --out gaussians.h5 [--png DIR]
    gaussvae render GAUSSIANS.h5 --out DIR [--size S]
    gaussvae encode --model MODEL IMAGE_OR_FOLDER_OR_H5... --out codes.npy|codes.h5
    gaussvae decode --model MODEL CODES --out DIR
    gaussvae reconstruct --model MODEL IMAGE... --out DIR
    gaussvae sample --model MODEL -n N --seed S --out DIR
    gaussvae interpolate --model MODEL A B --steps K --out DIR

MODEL is a model file (data/train/model.safetensors, or the pixel baseline's
baselines/data/model.safetensors for encode, decode, reconstruct, sample and interpolate).
Codes are the posterior means as stored (float16), one row per input, with the source of each
row (an HDF5 file's ``source`` dataset, or a ``.sources.txt`` file beside a ``.npy``). Errors
are one line, exit code 2.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from gaussvae.app.api import GaussianModel, Model, fit, load, psnrs, read_images, render_spec
from gaussvae.core.atomic import atomic_path
from gaussvae.core.cli import run_stage
from gaussvae.core.device import resolve_device
from gaussvae.core.errors import UserError
from gaussvae.core.params import Params, load_params
from gaussvae.core.store import GaussianSet, read_gaussians, read_sources, write_gaussians
from gaussvae.evaluation.code_storage import as_fp16
from gaussvae.evaluation.pictures import image_grid, save_png
from gaussvae.gaussians.extraction import file_attrs
from gaussvae.gaussians.render import RenderSpec, render_uint8
from gaussvae.vae.model import DiagonalGaussian


def _progress(desc: str, total: int | None = None) -> tqdm:
    return tqdm(total=total, desc=desc, unit="img", leave=False)


def _name(index: int, source: str) -> str:
    """A PNG's file name for row ``index`` from ``source``: its stem, made filename-safe."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source.split(":")[-1]).stem)[:60]
    return f"{index:04d}_{stem or 'image'}.png"


def _write_pngs(images: np.ndarray, sources: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, source) in enumerate(zip(images, sources, strict=True)):
        save_png(Image.fromarray(image), folder / _name(i, source))


def _gaussian_model(model: Model, command: str, path: str) -> GaussianModel:
    if not isinstance(model, GaussianModel):
        raise UserError(f"{path}: the pixel baseline's model has no Gaussians; `gaussvae "
                        f"{command}` needs the Gaussian VAE's (data/train/model.safetensors)")
    return model


def _fit(params: Params, device: torch.device, images: np.ndarray, sources: list[str]
         ) -> GaussianSet:
    with _progress("fit", len(images)) as bar:
        return fit(images, params, device, lambda done, _psnr, _total: bar.update(done),
                   sources)


def _write_gaussian_set(path: Path, gaussians: torch.Tensor | np.ndarray, sources: list[str],
                        psnr: np.ndarray, model: GaussianModel) -> None:
    g = np.asarray(torch.as_tensor(gaussians).cpu(), dtype=np.float32)
    attrs = file_attrs(model.image_size, model.params.extract, [])
    write_gaussians(path, GaussianSet(g, np.zeros(len(g), np.uint8), psnr.astype(np.float32),
                                      sources, attrs))


# --- the subcommands -----------------------------------------------------------------------


def cmd_fit(args: argparse.Namespace) -> None:
    settings = load_params(args.params)
    size = settings.prepare.image_size
    images, sources = read_images(args.inputs, size)
    fits = _fit(settings, resolve_device(settings.extract.device), images, sources)
    write_gaussians(args.out, fits)
    if args.png:
        _write_pngs(render_uint8(torch.from_numpy(fits.gaussians), render_spec(settings)),
                    sources, Path(args.png))
    print(f"fitted {len(images)} images ({size} px, {settings.extract.num_gaussians} Gaussians) "
          f"-> {args.out}; mean PSNR {fits.psnr.mean():.2f} dB")


def cmd_render(args: argparse.Namespace) -> None:
    data = read_gaussians(args.gaussians)
    spec = RenderSpec.from_attrs(data.attrs)
    spec = spec.at_size(args.size or spec.image_size)
    g = torch.from_numpy(data.gaussians)
    with _progress("render", len(g)) as bar:
        parts = []
        for i in range(0, len(g), 64):
            parts.append(render_uint8(g[i:i + 64], spec))
            bar.update(len(parts[-1]))
    _write_pngs(np.concatenate(parts), data.sources, Path(args.out))
    print(f"rendered {len(g)} images at {spec.image_size} px -> {args.out}")


def _encode_inputs(model: Model, inputs: list[str]) -> tuple[DiagonalGaussian, list[str]]:
    """Posteriors of every input (HDF5 files of Gaussians, images, folders), in order."""
    h5 = [p for p in inputs if p.endswith((".h5", ".hdf5"))]
    if h5 and len(h5) != len(inputs):
        raise UserError("give either gaussians.h5 files or images and folders, not both")
    if h5:
        gaussian_model = _gaussian_model(model, "encode", inputs[0])
        sets = [read_gaussians(p) for p in h5]
        g = np.concatenate([s.gaussians for s in sets])
        return gaussian_model.encode(g), [src for s in sets for src in s.sources]
    with _progress("read") as bar:
        images, sources = read_images(inputs, model.image_size, bar.update)
    if isinstance(model, GaussianModel):
        fits = _fit(model.params, model.device, images, sources)
        return model.encode(fits.gaussians), sources
    return model.encode(images), sources


def cmd_encode(args: argparse.Namespace) -> None:
    model = load(args.model)
    posterior, sources = _encode_inputs(model, args.inputs)
    codes = posterior.mode().half().cpu().numpy()
    out = Path(args.out)
    if out.suffix in (".h5", ".hdf5"):
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("codes", data=codes, track_times=False)
            f.create_dataset("source", data=np.asarray(sources, dtype=object),
                             dtype=h5py.string_dtype(), track_times=False)
            f.attrs["model"] = str(args.model)
    elif out.suffix == ".npy":
        with atomic_path(out) as tmp, tmp.open("wb") as f:
            np.save(f, codes)
        with atomic_path(_sources_path(out)) as tmp:
            tmp.write_text("".join(f"{s}\n" for s in sources))
    else:
        raise UserError(f"{out}: --out must end in .npy or .h5")
    print(f"encoded {len(codes)} inputs to {codes.shape[1]}-d float16 codes -> {out}")


def _sources_path(npy: Path) -> Path:
    return npy.with_suffix(".sources.txt")


def _read_codes(path: str, latent_dim: int) -> tuple[np.ndarray, list[str]]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such codes file")
    try:
        if p.suffix in (".h5", ".hdf5"):
            with h5py.File(p, "r") as f:
                codes = f["codes"][()]
                sources = read_sources(f)
        else:
            codes = np.load(p, allow_pickle=False)
            names = _sources_path(p)
            sources = names.read_text().splitlines() if names.exists() else \
                [f"code:{i}" for i in range(len(codes))]
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{p}: not a codes file of `gaussvae encode` ({err})") from None
    if codes.ndim != 2 or codes.shape[1] != latent_dim:
        raise UserError(f"{p}: codes of shape {codes.shape}, this model takes (n, {latent_dim})")
    return codes.astype(np.float32), sources


def _decode_and_write(model: Model, z: torch.Tensor, sources: list[str], out: Path
                      ) -> np.ndarray:
    """PNGs of the decoded codes in ``out``, and for the Gaussian VAE the decoded Gaussians
    (out/gaussians.h5, the pipeline's schema; psnr is NaN: there is no image to compare);
    returns the images."""
    if isinstance(model, GaussianModel):
        g = model.decode(z)
        _write_gaussian_set(out / "gaussians.h5", g, sources, np.full(len(g), np.nan), model)
        images = model.render(g)
    else:
        images = model.decode_images(z)
    _write_pngs(images, sources, out)
    return images


def cmd_decode(args: argparse.Namespace) -> None:
    model = load(args.model)
    codes, sources = _read_codes(args.codes, model.latent_dim)
    _decode_and_write(model, torch.from_numpy(codes), sources, Path(args.out))
    print(f"decoded {len(codes)} codes -> {args.out}")


def cmd_reconstruct(args: argparse.Namespace) -> None:
    model = load(args.model)
    images, sources = read_images(args.images, model.image_size)
    if isinstance(model, GaussianModel):
        fits = _fit(model.params, model.device, images, sources)
        z = as_fp16(model.encode(fits.gaussians).mode())
        columns = [images, model.render(fits.gaussians), model.decode_images(z)]
        fit_psnr = psnrs(columns[1], images)
    else:
        z = as_fp16(model.encode(images).mode())
        columns = [images, model.decode_images(z)]
        fit_psnr = None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    titles = ["original", "fit", "VAE"] if fit_psnr else ["original", "pixel AE"]
    recon_psnr = psnrs(columns[-1], images)
    for i, source in enumerate(sources):
        save_png(image_grid([c[i:i + 1] for c in columns], titles), out / _name(i, source))
        fit_text = f"fit {fit_psnr[i]:.2f} dB, " if fit_psnr else ""
        print(f"{source}: {fit_text}reconstruction {recon_psnr[i]:.2f} dB")
    print(f"mean reconstruction PSNR {np.mean(recon_psnr):.2f} dB over {len(sources)} images "
          f"-> {out}")


def cmd_sample(args: argparse.Namespace) -> None:
    model = load(args.model)
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.n, model.latent_dim, generator=gen)
    _decode_and_write(model, z, [f"sample:{args.seed}:{i}" for i in range(args.n)],
                      Path(args.out))
    print(f"decoded {args.n} codes drawn from N(0, I) (seed {args.seed}) -> {args.out}")


def cmd_interpolate(args: argparse.Namespace) -> None:
    model = load(args.model)
    if args.steps < 2:
        raise UserError(f"--steps must be at least 2, got {args.steps}")
    posterior, sources = _encode_inputs(model, [args.a, args.b])
    if len(sources) != 2:
        raise UserError(f"interpolate takes two images, got {len(sources)} from {args.a}, "
                        f"{args.b}")
    a, b = as_fp16(posterior.mode())
    z = torch.stack([a + (b - a) * t for t in np.linspace(0.0, 1.0, args.steps)])
    out = Path(args.out)
    frames = _decode_and_write(model, z, [f"step{k}" for k in range(args.steps)], out)
    save_png(image_grid([frames[k:k + 1] for k in range(args.steps)]), out / "strip.png")
    print(f"{args.steps} decodes from {sources[0]} to {sources[1]} -> {out}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gaussvae", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, fn, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(run=fn)
        return p

    p = command("fit", cmd_fit, "fit Gaussians to images as the extract stage does")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--out", required=True, help="gaussians.h5 to write (the pipeline's schema)")
    p.add_argument("--png", metavar="DIR", help="also write the fits' renders here")
    p.add_argument("--params", default="params.yaml",
                   help="its prepare.image_size and extract settings (default params.yaml)")
    p = command("render", cmd_render, "render a gaussians.h5 to PNGs, at any size")
    p.add_argument("gaussians")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--size", type=int, help="pixels a side (default: the file's image size)")
    p = command("encode", cmd_encode, "images, folders or gaussians.h5 files to codes")
    p.add_argument("--model", required=True)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER_OR_H5")
    p.add_argument("--out", required=True, help="codes.npy or codes.h5")
    p = command("decode", cmd_decode, "codes to PNGs (and decoded Gaussians)")
    p.add_argument("--model", required=True)
    p.add_argument("codes", help="codes.npy or codes.h5 of `gaussvae encode`")
    p.add_argument("--out", required=True, metavar="DIR")
    p = command("reconstruct", cmd_reconstruct,
                "original | fit | reconstruction of each image, with its PSNR")
    p.add_argument("--model", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", required=True, metavar="DIR")
    p = command("sample", cmd_sample, "images decoded from codes drawn from the prior")
    p.add_argument("--model", required=True)
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR")
    p = command("interpolate", cmd_interpolate, "decodes along the line between two codes")
    p.add_argument("--model", required=True)
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--out", required=True, metavar="DIR")
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run_stage(f"gaussvae {args.command}", lambda: args.run(args))


if __name__ == "__main__":
    main()
