"""M4AudioFeatures and M4CPPNFrames: audio-reactive CPPN patterns (seed 002) over agents/patterns."""

from __future__ import annotations

from typing import Any

import comfy.model_management as mm
import comfy.utils
import numpy as np
import torch
from comfy_api.v0_0_2 import io

from ..agents.patterns.audio_features import SCALARS, AudioFeatures, extract_features
from ..agents.patterns.config import PATTERNS, default_config, default_presets
from ..agents.patterns.guided import GuideSettings, guided_weights, load_clip_target
from ..agents.patterns.palettes import palette_from_image, palette_names
from ..agents.patterns.plot import plot_features
from ..agents.patterns.render import (
    Renderer,
    check_frame_range,
    frames_per_chunk,
    make_renderer,
    render_chunks,
    schedule_for,
)
from .combo_check import combo_verdict, require_combos
from .convert import image_batch_to_numpy
from .types import CATEGORY
from .types import AudioFeatures as AudioFeaturesType

FROM_PRESET = "from preset"
FROM_IMAGE = "from palette_image"


PANEL_CURVES = ("rms", "onset", "low", "mid", "high")  # drawn on the node, one row each (web/m4_panels.js)
PANEL_POINTS = 240  # a curve is sent at most this long (the canvas is narrower): frames averaged in bins


def _curve(x: np.ndarray) -> list[float]:
    bins = np.array_split(np.asarray(x, np.float64), min(PANEL_POINTS, x.size)) if x.size else []
    return [round(float(b.mean()), 3) for b in bins]


def _panel(f: AudioFeatures) -> dict[str, Any]:
    data = f.summary() | {
        "onsets": int(np.sum((f.raw_onset[1:] >= 0.5) & (f.raw_onset[:-1] < 0.5)) + (f.raw_onset[:1] >= 0.5).sum()),
        "mean_rms": round(float(f.values["rms"].mean()), 4),
        "curves": {name: _curve(f.values[name]) for name in PANEL_CURVES if name in f.values},
        "beat_positions": [round(float(t) / max(f.duration_s, 1e-9), 4) for t in f.beat_times],  # 0..1 of the clip
    }
    return {"kind": "audio_features", "title": "Audio Features", "data": data}


class M4AudioFeatures(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        lists = [io.Float.Output(name, display_name=name, is_output_list=True,
                                 tooltip=f"Per-frame {name} (0..1), one value per video frame, as a list.")
                 for name in SCALARS]
        return io.Schema(
            node_id="M4AudioFeatures",
            display_name="M4 Audio Features",
            category=f"{CATEGORY}/patterns",
            is_output_node=True,
            description=(
                "Per-video-frame audio features on one time base: the frame count is round(duration x fps) from "
                "the clip itself. Onset (spectral flux), RMS, low/mid/high bands, spectral centroid, chroma, "
                "beats and tempo, each with attack/release smoothing. numpy/scipy only, no downloads."
            ),
            inputs=[
                io.Audio.Input("audio", tooltip="AUDIO from Load Audio: one clip, any channel count, 8-192 kHz."),
                io.Float.Input("fps", default=30.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Video frame rate; frames = round(duration x fps)."),
            ],
            outputs=[
                AudioFeaturesType.Output("features", display_name="features",
                                         tooltip="All features of the clip, for M4 CPPN Frames."),
                io.Int.Output("frame_count", display_name="frame_count",
                              tooltip="round(duration x fps): the number of video frames."),
                io.Float.Output("fps_out", display_name="fps", tooltip="The frame rate the features are on."),
                io.Image.Output("plot", display_name="plot", tooltip="The features drawn over time."),
                *lists,
            ],
        )

    @classmethod
    def execute(cls, audio: dict[str, Any], fps: float) -> io.NodeOutput:
        if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
            raise ValueError("audio: expected ComfyUI AUDIO {'waveform': [B, C, T], 'sample_rate': int}")
        wave = audio["waveform"]
        arr = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
        feats = extract_features(arr, audio["sample_rate"], float(fps))
        plot = torch.from_numpy(plot_features(feats))[None]
        lists = [[float(v) for v in feats.values[name]] for name in SCALARS]
        return io.NodeOutput(feats, feats.n_frames, feats.fps, plot, *lists, ui={"m4_panel": [_panel(feats)]})


class M4CPPNFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        cfg = default_config()
        lo, hi = cfg.rint("min_size"), cfg.rint("max_size")
        presets = sorted(default_presets())
        return io.Schema(
            node_id="M4CPPNFrames",
            display_name="M4 CPPN Frames",
            category=f"{CATEGORY}/patterns",
            description=(
                "Renders one frame per audio frame: a 4-layer CPPN over a pattern field (fractal, organic, flowing, "
                "geometric, voronoi), coloured by a Lab palette, its latent, zoom, warp and palette position driven "
                "by the features as the mapping preset says, switching weight sets on beats. Same seed, same frames."
            ),
            inputs=[
                AudioFeaturesType.Input("features", tooltip="From M4 Audio Features."),
                io.Combo.Input("preset", options=presets, default="pulse",
                               tooltip="Mapping preset: which feature drives what, with what gain."),
                io.Combo.Input("pattern", options=[FROM_PRESET, *PATTERNS], default=FROM_PRESET,
                               tooltip="Pattern field; 'from preset' uses the preset's."),
                io.Combo.Input("palette", options=[FROM_PRESET, *palette_names(), FROM_IMAGE], default=FROM_PRESET,
                               tooltip="Lab gradient palette; 'from palette_image' takes it from the image input."),
                io.Int.Input("width", default=512, min=lo, max=hi, step=8, tooltip=f"Frame width ({lo}..{hi} px)."),
                io.Int.Input("height", default=512, min=lo, max=hi, step=8, tooltip=f"Frame height ({lo}..{hi} px)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="CPPN weights and fields; same seed, "
                             "same frames."),
                io.Int.Input("start_frame", default=0, min=0, max=10_000_000, tooltip="First frame to render."),
                io.Int.Input("frame_count", default=0, min=0, max=10_000_000,
                             tooltip="Frames to render from start_frame; 0 = to the end of the audio."),
                io.Image.Input("palette_image", optional=True,
                               tooltip="Reference image for palette 'from palette_image' (its main Lab colours)."),
            ],
            outputs=[
                io.Image.Output("images", display_name="images", tooltip="The frames, [frames, H, W, 3]."),
                io.Float.Output("fps", display_name="fps", tooltip="The features' frame rate, for Create Video."),
            ],
        )

    @classmethod
    def validate_inputs(cls, preset: str | None = None, pattern: str | None = None,
                        palette: str | None = None) -> bool | str:
        return combo_verdict(cls, preset=preset, pattern=pattern, palette=palette)  # nodes/combo_check.py

    @classmethod
    def execute(cls, features: AudioFeatures, preset: str, pattern: str, palette: str, width: int, height: int,
                seed: int, start_frame: int, frame_count: int, palette_image: Any = None) -> io.NodeOutput:
        require_combos(cls, {"preset": preset, "pattern": pattern, "palette": palette})
        if not isinstance(features, AudioFeatures):
            raise ValueError("features: expected M4_AUDIO_FEATURES from M4 Audio Features")
        lut: str | np.ndarray | None = None if palette == FROM_PRESET else palette
        if palette == FROM_IMAGE:
            if palette_image is None:
                raise ValueError("palette_image: palette 'from palette_image' needs an image wired in")
            lut = palette_from_image(image_batch_to_numpy(palette_image, "palette_image")[0][..., :3], seed=seed)
        r = make_renderer(preset, width, height, seed, pattern=None if pattern == FROM_PRESET else pattern,
                          palette=lut, device=mm.get_torch_device())
        return io.NodeOutput(_render_batch(r, features, start_frame, frame_count), features.fps)


def _render_batch(r: Renderer, features: AudioFeatures, start_frame: int, frame_count: int) -> torch.Tensor:
    """Frames in chunks into one IMAGE batch, with the progress bar and a check for Cancel per chunk."""
    start, stop = check_frame_range(r, features.n_frames, start_frame, frame_count)
    sched = schedule_for(r, features)
    bar = comfy.utils.ProgressBar(max(1, -(-(stop - start) // frames_per_chunk(r))))
    out = torch.empty((stop - start, r.height, r.width, 3), dtype=torch.float32)
    done = 0
    for chunk in render_chunks(r, sched, start, stop):
        mm.throw_exception_if_processing_interrupted()
        out[done:done + chunk.shape[0]] = chunk
        done += chunk.shape[0]
        bar.update(1)
    return out


class M4CLIPGuidedCPPN(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        cfg = default_config()
        lo, hi = cfg.rint("min_size"), cfg.rint("max_size")
        return io.Schema(
            node_id="M4CLIPGuidedCPPN",
            display_name="M4 CLIP-Guided CPPN",
            category=f"{CATEGORY}/patterns",
            description=(
                "Optimises the CPPN's weight sets so its frames' open_clip image embedding approaches the prompt's "
                "text embedding (a local model folder, nothing downloaded), with random crops, flips and noise, and "
                "a regulariser that keeps loud and quiet frames as different as before; then renders like M4 CPPN "
                "Frames. The optimised weights are cached by prompt, model and settings."
            ),
            inputs=[
                AudioFeaturesType.Input("features", tooltip="From M4 Audio Features."),
                io.String.Input("open_clip_model_path", default="",
                                tooltip="Folder with open_clip_config.json and the weights (open_clip's local-dir)."),
                io.String.Input("prompt", default="glowing blue ocean waves", multiline=True,
                                tooltip="What the frames should look like to CLIP."),
                io.Combo.Input("preset", options=sorted(default_presets()), default="pulse",
                               tooltip="Mapping preset: which feature drives what, with what gain."),
                io.Combo.Input("pattern", options=[FROM_PRESET, *PATTERNS], default=FROM_PRESET,
                               tooltip="Pattern field; 'from preset' uses the preset's."),
                io.Int.Input("width", default=512, min=lo, max=hi, step=8, tooltip=f"Frame width ({lo}..{hi} px)."),
                io.Int.Input("height", default=512, min=lo, max=hi, step=8, tooltip=f"Frame height ({lo}..{hi} px)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="Initial weights, fields, crops."),
                io.Int.Input("steps", default=60, min=1, max=5000, tooltip="Optimisation steps."),
                io.Float.Input("lr", default=0.02, min=0.0001, max=1.0, step=0.001, tooltip="Adam learning rate."),
                io.Int.Input("optimise_size", default=128, min=16, max=512, step=8,
                             tooltip="Resolution the optimisation renders at (the output uses width x height)."),
                io.Float.Input("reactivity_weight", default=1.0, min=0.0, max=100.0, step=0.1,
                               tooltip="How strongly the audio reactivity is kept while the look changes."),
            ],
            outputs=[
                io.Image.Output("images", display_name="images", tooltip="The frames, [frames, H, W, 3]."),
                io.Float.Output("fps", display_name="fps", tooltip="The features' frame rate, for Create Video."),
                io.String.Output("report", display_name="report", tooltip="Loss, steps, and whether it was cached."),
            ],
        )

    @classmethod
    def validate_inputs(cls, preset: str | None = None, pattern: str | None = None) -> bool | str:
        return combo_verdict(cls, preset=preset, pattern=pattern)  # nodes/combo_check.py

    @classmethod
    def execute(cls, features: AudioFeatures, open_clip_model_path: str, prompt: str, preset: str, pattern: str,
                width: int, height: int, seed: int, steps: int, lr: float, optimise_size: int,
                reactivity_weight: float) -> io.NodeOutput:
        require_combos(cls, {"preset": preset, "pattern": pattern})
        if not isinstance(features, AudioFeatures):
            raise ValueError("features: expected M4_AUDIO_FEATURES from M4 Audio Features")
        settings = GuideSettings(steps, lr, optimise_size, reactivity_weight, seed).check()
        pat = None if pattern == FROM_PRESET else pattern
        bar = comfy.utils.ProgressBar(steps)
        losses: list[float] = []

        def on_step(i: int, value: float) -> None:
            mm.throw_exception_if_processing_interrupted()
            losses.append(value)
            bar.update_absolute(i)

        # ComfyUI runs nodes under torch.inference_mode(): the optimisation needs gradients, and tensors made
        # in inference mode cannot take part in autograd, so the model is loaded and optimised outside it.
        with torch.inference_mode(False), torch.enable_grad():
            loss_fn, target_id = load_clip_target(open_clip_model_path, prompt, seed=seed)
            weights, cached = guided_weights(features, preset, pat, seed, target_id, lambda: loss_fn, settings,
                                             on_step)
        r = make_renderer(preset, width, height, seed, pattern=pat, device=mm.get_torch_device(), weights=weights)
        images = _render_batch(r, features, 0, 0)
        report = ("cached weights (same prompt, model and settings)" if cached else
                  f"CLIP loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps")
        return io.NodeOutput(images, features.fps, report)


NODES = [M4AudioFeatures, M4CPPNFrames, M4CLIPGuidedCPPN]
