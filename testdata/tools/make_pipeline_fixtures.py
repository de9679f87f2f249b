"""Makes the end-to-end pipeline fixtures under testdata/pipe_*/ (see testdata/README.md).

A development tool, not part of the build: run it with a CPU Python environment holding diffusers
v0.31.0, transformers 4.45.0.dev0 and torch 1.13 (the development machines' reference environment;
`refpy` is its interpreter, in offline mode):

    /opt/refenv/bin/refpy testdata/tools/make_pipeline_fixtures.py testdata

For each family it builds a tiny pipeline with seeded random weights, saves it with
save_pretrained (the folder `sdrt export-pipeline --from` reads), and runs diffusers on one prompt,
negative prompt, guidance scale, step count and starting latents, once per deterministic scheduler,
recording the final latents (output_type="latent") and the 8-bit image (output_type="np", then
diffusers' own numpy_to_pil rounding) under reference/. Ancestral Euler cannot be matched (its noise
is torch's random stream), so its per-step sigmas (up/down) are recorded instead, measured by
running the diffusers scheduler's own step. Image to image runs at strength 0.6 with the VAE
encoder's mean (not a sample) and given noise, the two draws diffusers would make from its generator.
"""
import json
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                       StableDiffusion3Img2ImgPipeline, StableDiffusion3Pipeline, StableDiffusionImg2ImgPipeline,
                       StableDiffusionPipeline, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
import transformers.tokenization_utils_base as _tub

# Without the tokenizers package transformers falls back to its own AddedToken, a dataclass with eq=True
# and so no __hash__, and without __setstate__; the slow tokenizer's constructor needs both.
if getattr(_tub.AddedToken, "__hash__", None) is None:
    _tub.AddedToken.__hash__ = lambda self: hash(self.content)
if not hasattr(_tub.AddedToken, "__setstate__"):
    _tub.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

OUT = sys.argv[1] if len(sys.argv) > 1 else "testdata"
PROMPT = "A red fox, in the snow!"
NEGATIVE = "blurry fog"
GUIDANCE = 5.0
STEPS = 5
SIZE = 32
STRENGTH = 0.6


def randomize(module, seed):
    """Every parameter random: matrices ~ N(0, 1/fan_in), norm scales near 1, biases small."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(fan_in))
            elif name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return module.eval()


def byte_symbols():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


MERGES = [("f", "o"), ("fo", "x</w>"), ("r", "e"), ("re", "d</w>"), ("s", "n"), ("t", "h")]


def write_tokenizer(tmp, pad_token):
    """A CLIP-format vocabulary: the 256 byte symbols, the same ending a word, a few merges, then the specials."""
    symbols = byte_symbols()
    vocab = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(tmp, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    tok = CLIPTokenizer(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"), pad_token=pad_token,
                        model_max_length=77)
    return tok, len(vocab)


def clip_config(vocab_size, hidden, projection=None, legacy_eos=True, layers=2):
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2 + 5,
                          num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=77,
                          hidden_act="quick_gelu" if legacy_eos else "gelu", projection_dim=projection or hidden,
                          bos_token_id=vocab_size - 2, eos_token_id=2 if legacy_eos else vocab_size - 1,
                          pad_token_id=1)


def vae(seed, latent_channels=4, scaling=0.18215, shift=None, quant=True):
    model = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                          up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[8, 16], layers_per_block=1,
                          latent_channels=latent_channels, norm_num_groups=4, sample_size=SIZE,
                          scaling_factor=scaling, shift_factor=shift, use_quant_conv=quant, use_post_quant_conv=quant)
    return randomize(model, seed)


def unet(seed, cross_dim, sdxl=False, linear=False, pooled_dim=0):
    kwargs = dict(sample_size=SIZE // 2, in_channels=4, out_channels=4, layers_per_block=1,
                  block_out_channels=[16, 32], norm_num_groups=8, cross_attention_dim=cross_dim,
                  use_linear_projection=linear)
    if sdxl:
        kwargs.update(down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
                      up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"], attention_head_dim=[2, 4],
                      transformer_layers_per_block=[1, 2], addition_embed_type="text_time",
                      addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + pooled_dim)
    else:
        kwargs.update(down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                      up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"], attention_head_dim=2)
    return randomize(UNet2DConditionModel(**kwargs), seed)


def sd_scheduler_config(prediction):
    # the fields of SD 1.5's / 2.1's scheduler_config.json (PNDM in 1.5; every scheduler below is made from it)
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type=prediction, steps_offset=1, clip_sample=False, set_alpha_to_one=False,
                skip_prk_steps=True, timestep_spacing="leading")


SCHEDULERS = {
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "dpm++2m": lambda c: DPMSolverMultistepScheduler.from_config(c),
    "dpm++2m-karras": lambda c: DPMSolverMultistepScheduler.from_config(c, use_karras_sigmas=True),
}


def to_8bit(images):
    # diffusers' numpy_to_pil: (images * 255).round().astype("uint8"), images in [0, 1], NHWC
    return (images * 255).round().astype("uint8")


def save(ref, name, array):
    np.save(os.path.join(ref, name + ".npy"), np.ascontiguousarray(array))


def run_case(pipe, ref, case, **kwargs):
    with torch.no_grad():
        latents = pipe(**kwargs, output_type="latent").images
        image = pipe(**kwargs, output_type="np").images
    save(ref, f"out_{case}_latents", latents.numpy().astype(np.float32))
    save(ref, f"out_{case}_image", to_8bit(image))
    print(f"  {case}: latents max {latents.abs().max():.3f}, image mean {image.mean():.3f}"
          f" clipped {(image <= 0).mean() + (image >= 1).mean():.2f}")


def ancestral_table(config, steps, ref):
    """σ_up and σ_down of each ancestral Euler step, measured with diffusers' step: sample 0, ε = 1."""
    # σ_up and σ_down do not depend on the prediction type; ε-prediction makes the step's algebra below hold
    sched = EulerAncestralDiscreteScheduler.from_config(config, prediction_type="epsilon")
    sched.set_timesteps(steps)
    module = sys.modules[EulerAncestralDiscreteScheduler.__module__]
    rows = []
    original = module.randn_tensor
    for i, t in enumerate(sched.timesteps):
        sigma = float(sched.sigmas[i])
        outs = []
        for z in (0.0, 1.0):
            module.randn_tensor = lambda shape, **kw: torch.full(shape, z)
            sched._step_index = i
            x = torch.zeros(1)
            # with ε-prediction x0 = x − σ·ε and the step is x + ε·(σ_down − σ) + z·σ_up
            outs.append(float(sched.step(torch.ones(1), t, x).prev_sample))
        module.randn_tensor = original
        down = outs[0] + sigma
        up = outs[1] - outs[0]
        rows.append([float(t), sigma, float(sched.sigmas[i + 1]), up, down])
    save(ref, "euler_a_steps", np.array(rows, dtype=np.float64))


def text_cases(pipe, ref, config, latents, schedulers, extra=None):
    for name, make in schedulers.items():
        pipe.scheduler = make(config)
        args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, guidance_scale=GUIDANCE, num_inference_steps=STEPS,
                    height=SIZE, width=SIZE, latents=latents.clone())
        args.update(extra or {})
        run_case(pipe, ref, name.replace("+", "p"), **args)


def img2img_case(pipe_cls, components, ref, config, scheduler, noise, init_image, extra=None, **pipe_kwargs):
    """Image to image with the encoder's mean and given noise in place of diffusers' two generator draws."""
    pipe = pipe_cls(**components, **pipe_kwargs)
    pipe.scheduler = SCHEDULERS.get(scheduler, lambda c: FlowMatchEulerDiscreteScheduler.from_config(c))(config)
    module = sys.modules[pipe_cls.__module__]
    original_retrieve, original_randn = module.retrieve_latents, module.randn_tensor
    module.retrieve_latents = lambda out, generator=None, sample_mode="sample": out.latent_dist.mode()
    module.randn_tensor = lambda shape, **kw: noise.clone()
    try:
        image = torch.from_numpy(init_image.astype(np.float32) / 255).permute(2, 0, 1)[None]
        args = dict(prompt=PROMPT, negative_prompt=NEGATIVE, guidance_scale=GUIDANCE, num_inference_steps=STEPS,
                    image=image, strength=STRENGTH)
        args.update(extra or {})
        run_case(pipe, ref, "img2img_" + scheduler.replace("+", "p"), **args)
    finally:
        module.retrieve_latents, module.randn_tensor = original_retrieve, original_randn
    save(ref, "in_img2img_image", init_image)


def starting_latents(seed, channels):
    return torch.randn((1, channels, SIZE // 2, SIZE // 2), generator=torch.Generator().manual_seed(seed))


def init_image():
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    base = np.stack([x * 255 / (SIZE - 1), y * 255 / (SIZE - 1), (x + y) * 127 / (SIZE - 1)], axis=-1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def make_sd(folder, seed, prediction, pad_token, linear):
    print(folder)
    root = os.path.join(OUT, folder)
    ref = os.path.join(root, "reference")
    os.makedirs(ref, exist_ok=True)
    tokenizer, vocab_size = write_tokenizer(os.path.join(root, "_tok"), pad_token)
    text_encoder = randomize(CLIPTextModel(clip_config(vocab_size, 32)), seed + 1)
    config = sd_scheduler_config(prediction)
    components = dict(vae=vae(seed + 2), text_encoder=text_encoder, tokenizer=tokenizer,
                      unet=unet(seed + 3, 32, linear=linear), scheduler=DDIMScheduler.from_config(config),
                      safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = StableDiffusionPipeline(**components)
    pipe.save_pretrained(root, safe_serialization=True)
    latents = starting_latents(seed + 4, 4)
    save(ref, "in_latents", latents.numpy())
    text_cases(pipe, ref, config, latents, SCHEDULERS)
    ancestral_table(config, STEPS, ref)
    noise = starting_latents(seed + 5, 4)
    save(ref, "in_img2img_noise", noise.numpy())
    for s in ("ddim", "euler", "dpm++2m"):
        img2img_case(StableDiffusionImg2ImgPipeline, components, ref, config, s, noise, init_image())
    clean(root)


def make_sdxl(folder, seed):
    print(folder)
    root = os.path.join(OUT, folder)
    ref = os.path.join(root, "reference")
    os.makedirs(ref, exist_ok=True)
    tokenizer, vocab_size = write_tokenizer(os.path.join(root, "_tok"), "<|endoftext|>")
    tokenizer_2, _ = write_tokenizer(os.path.join(root, "_tok2"), "!")
    te1 = randomize(CLIPTextModel(clip_config(vocab_size, 32, legacy_eos=False)), seed + 1)
    te2 = randomize(CLIPTextModelWithProjection(clip_config(vocab_size, 32, projection=24, legacy_eos=False)), seed + 2)
    config = sd_scheduler_config("epsilon")
    components = dict(vae=vae(seed + 3, scaling=0.13025), text_encoder=te1, text_encoder_2=te2, tokenizer=tokenizer,
                      tokenizer_2=tokenizer_2, unet=unet(seed + 4, 64, sdxl=True, linear=True, pooled_dim=24),
                      scheduler=EulerDiscreteScheduler.from_config(config))
    pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
    pipe.save_pretrained(root, safe_serialization=True)
    latents = starting_latents(seed + 5, 4)
    save(ref, "in_latents", latents.numpy())
    text_cases(pipe, ref, config, latents, SCHEDULERS)
    # no negative prompt (None): SDXL's force_zeros_for_empty_prompt zeroes the unconditional embeddings.
    # (An explicit negative_prompt="" is encoded as text instead; sdrt's "" means "none given".)
    pipe.scheduler = EulerDiscreteScheduler.from_config(config)
    run_case(pipe, ref, "euler_no_negative", prompt=PROMPT, guidance_scale=GUIDANCE,
             num_inference_steps=STEPS, height=SIZE, width=SIZE, latents=latents.clone())
    noise = starting_latents(seed + 6, 4)
    save(ref, "in_img2img_noise", noise.numpy())
    img2img_case(StableDiffusionXLImg2ImgPipeline, components, ref, config, "euler", noise, init_image(),
                 add_watermarker=False)
    clean(root)


def make_sd3(folder, seed):
    print(folder)
    root = os.path.join(OUT, folder)
    ref = os.path.join(root, "reference")
    os.makedirs(ref, exist_ok=True)
    tokenizer, vocab_size = write_tokenizer(os.path.join(root, "_tok"), "<|endoftext|>")
    tokenizer_2, _ = write_tokenizer(os.path.join(root, "_tok2"), "!")
    te1 = randomize(CLIPTextModelWithProjection(clip_config(vocab_size, 16, projection=16, legacy_eos=False)), seed + 1)
    te2 = randomize(CLIPTextModelWithProjection(clip_config(vocab_size, 16, projection=24, legacy_eos=False)), seed + 2)
    transformer = randomize(SD3Transformer2DModel(sample_size=SIZE // 2, patch_size=2, in_channels=16, num_layers=2,
                                                  attention_head_dim=8, num_attention_heads=4, joint_attention_dim=48,
                                                  caption_projection_dim=32, pooled_projection_dim=40, out_channels=16,
                                                  pos_embed_max_size=32), seed + 3)
    config = dict(num_train_timesteps=1000, shift=3.0)
    components = dict(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler.from_config(config),
                      vae=vae(seed + 4, latent_channels=16, scaling=1.5305, shift=0.0609, quant=False),
                      text_encoder=te1, tokenizer=tokenizer, text_encoder_2=te2, tokenizer_2=tokenizer_2,
                      text_encoder_3=None, tokenizer_3=None)
    pipe = StableDiffusion3Pipeline(**components)
    pipe.save_pretrained(root, safe_serialization=True)
    latents = starting_latents(seed + 5, 16)
    save(ref, "in_latents", latents.numpy())
    text_cases(pipe, ref, config, latents, {"flow-euler": lambda c: FlowMatchEulerDiscreteScheduler.from_config(c)})
    noise = starting_latents(seed + 6, 16)
    save(ref, "in_img2img_noise", noise.numpy())
    img2img_case(StableDiffusion3Img2ImgPipeline, components, ref, config, "flow-euler", noise, init_image())
    clean(root)


def clean(root):
    import shutil
    for t in ("_tok", "_tok2"):
        shutil.rmtree(os.path.join(root, t), ignore_errors=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    which = sys.argv[2:] or ["sd15", "sd2v", "sdxl", "sd3"]
    if "sd15" in which:
        make_sd("pipe_sd15", 100, "epsilon", "<|endoftext|>", linear=False)
    if "sd2v" in which:
        make_sd("pipe_sd2_v", 200, "v_prediction", "!", linear=True)
    if "sdxl" in which:
        make_sdxl("pipe_sdxl", 300)
    if "sd3" in which:
        make_sd3("pipe_sd3", 400)
