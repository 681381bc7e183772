"""The `vlm` backend: a Qwen2.5-VL model classifies by the likelihood of each class name.

For N images and C classes: one forward pass over the N prompts (image + question) fills the KV
cache; the cache is repeated C times and ONE batched forward pass over the N x C candidate answers
(`<class name><|im_end|>`) scores them. The score of a class is the sum of its tokens' log
probabilities; a softmax over the C scores gives real probabilities. No text is generated or parsed.

Imports torch, transformers, PIL and numpy only (the GPU benchmark relies on that).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pizza_inference import CLASSES
from pizza_inference.backends.base import (
    ModelBackend,
    ModelLoadError,
    check_probabilities,
    pick_device,
)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
IMAGE_SIZE = 448
"""Every image is resized to a square (448 px: 256 visual tokens) so all prompts have equal length;
smaller when the image processor's `max_pixels` is smaller (tiny test models use 112 px)."""


def max_pixels_of(image_processor: Any) -> int | None:
    value = getattr(image_processor, "max_pixels", None)
    if value is None:
        size = getattr(image_processor, "size", None)
        for key in ("max_pixels", "longest_edge"):
            value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
            if value:
                break
    return int(value) if value else None


def square_size(image_processor: Any, limit: int = IMAGE_SIZE) -> int:
    """Largest multiple of 28 (patch 14 x merge 2) <= `limit` whose square fits `max_pixels`."""
    max_pixels = max_pixels_of(image_processor)
    side = limit if max_pixels is None else min(limit, int(max_pixels**0.5))
    return max(28, side - side % 28)


QUESTION = (
    "What kind of pizza is shown in the image? Answer with one word: "
    + ", ".join(CLASSES[:-1])
    + f" or {CLASSES[-1]}."
)


def build_prompt(question: str = QUESTION) -> str:
    """The Qwen chat format for one image and a question, up to the assistant's answer."""
    return (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        f"{question}<|im_end|>\n<|im_start|>assistant\n"
    )


class VLMBackend(ModelBackend):
    kind = "vlm"

    def __init__(
        self,
        path: Path,
        *,
        precision: str,
        device: str = "auto",
        classes: Sequence[str] = CLASSES,
        image_size: int | None = None,
    ) -> None:
        super().__init__(path, precision=precision, device=device)
        self.classes = tuple(classes)
        self.image_size = image_size
        self.prompt = build_prompt()
        self._model: Any = None
        self._image_processor: Any = None
        self._candidates: torch.Tensor | None = None
        self._lengths: torch.Tensor | None = None

    @classmethod
    def from_components(
        cls,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        *,
        precision: str,
        image_size: int | None = None,
    ) -> VLMBackend:
        """A ready backend around a model built in memory (benchmarks: random weights)."""
        device = str(model.device.type)
        backend = cls(
            Path("<in-memory>"), precision=precision, device=device, image_size=image_size
        )
        backend._attach(model, tokenizer, image_processor, device)
        return backend

    def load(self) -> None:
        from transformers import (  # noqa: PLC0415
            AutoImageProcessor,
            AutoTokenizer,
            Qwen2_5_VLForConditionalGeneration,
        )

        if self.precision not in DTYPES:
            raise ModelLoadError(
                f"the vlm backend serves float32, float16 or bfloat16, not {self.precision!r}"
            )
        device = pick_device(self.requested_device)
        dtype = DTYPES[self.precision]
        if device == "cpu" and dtype != torch.float32:
            raise ModelLoadError(
                f"{self.precision} needs CUDA (device resolved to cpu); use float32 on CPU"
            )
        tokenizer = AutoTokenizer.from_pretrained(self.path)
        image_processor = AutoImageProcessor.from_pretrained(self.path)  # type: ignore[no-untyped-call]
        model: Any = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.path, dtype=dtype)
        model.to(device).eval()
        self._attach(model, tokenizer, image_processor, device)

    def _attach(self, model: Any, tokenizer: Any, image_processor: Any, device: str) -> None:
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|image_pad|>")}
        for token, token_id in ids.items():
            if token_id is None or token_id == tokenizer.unk_token_id:
                raise ModelLoadError(
                    f"the tokenizer has no {token} token: not a Qwen2.5-VL tokenizer"
                )
        if ids["<|image_pad|>"] != model.config.image_token_id:
            raise ModelLoadError("tokenizer and model disagree on the <|image_pad|> token id")
        end = ids["<|im_end|>"]
        before, after = self.prompt.split("<|image_pad|>")
        self._prompt_parts = (
            tokenizer.encode(before, add_special_tokens=False),
            tokenizer.encode(after, add_special_tokens=False),
        )
        self._image_token = ids["<|image_pad|>"]
        self._merge = int(getattr(image_processor, "merge_size", 2))
        forward = inspect.signature(model.model.forward).parameters
        self._send_token_types = "mm_token_type_ids" in forward
        token_lists = [
            [*tokenizer.encode(name, add_special_tokens=False), end] for name in self.classes
        ]
        width = max(len(t) for t in token_lists)
        candidates = torch.zeros((len(token_lists), width), dtype=torch.long)
        for i, tokens in enumerate(token_lists):
            candidates[i, : len(tokens)] = torch.tensor(tokens)
        self._candidates = candidates.to(device)
        self._lengths = torch.tensor([len(t) for t in token_lists], device=device)
        if self.image_size is None:
            self.image_size = square_size(image_processor)
        self._model, self._image_processor, self.device = model, image_processor, device
        self._loaded = True

    def _inputs(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """What Qwen2_5_VLProcessor would produce for N copies of the prompt (done here so that
        the video processor, which needs torchvision, is never loaded)."""
        assert self.image_size is not None
        size = (self.image_size, self.image_size)
        resized = [im.convert("RGB").resize(size, Image.Resampling.BICUBIC) for im in images]
        pixels = self._image_processor(images=resized, return_tensors="pt")
        grid = pixels["image_grid_thw"]
        per_image = int(grid[0].prod()) // (self._merge**2)
        before, after = self._prompt_parts
        ids = torch.tensor(before + [self._image_token] * per_image + after, dtype=torch.long)
        input_ids = ids.unsqueeze(0).repeat(len(images), 1).to(self.device)
        inputs = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "pixel_values": pixels["pixel_values"].to(self.device, self._model.dtype),
            "image_grid_thw": grid.to(self.device),
        }
        if self._send_token_types:
            inputs["mm_token_type_ids"] = (input_ids == self._image_token).to(torch.int32)
        return inputs

    @torch.inference_mode()
    def class_log_likelihoods(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(N, C) sum of log-probabilities of each class answer after the prompt."""
        if self._model is None or self._candidates is None or self._lengths is None:
            raise RuntimeError("model not loaded")
        model, n = self._model, len(images)
        candidates, lengths = self._candidates, self._lengths
        c, width = candidates.shape
        inputs = self._inputs(images)
        prefix_length = inputs["input_ids"].shape[1]

        # 1) the prompts: fill the cache, keep only the last position's logits
        prefix = model(**inputs, use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(prefix.logits[:, -1, :].float(), dim=-1)  # (N, V)
        scores = first.gather(1, candidates[:, 0].unsqueeze(0).expand(n, c))  # (N, C)
        if width == 1:
            return scores
        rope_deltas = getattr(model.model, "rope_deltas", None)
        if rope_deltas is None:
            raise RuntimeError("the model did not report rope deltas after the prompt pass")

        # 2) every (image, class) answer at once, on the cache repeated C times (image-major)
        cache = prefix.past_key_values
        cache.batch_repeat_interleave(c)
        tokens = candidates.repeat(n, 1)  # (N*C, W)
        steps = torch.arange(prefix_length, prefix_length + width, device=self.device)
        positions = steps.unsqueeze(0) + rope_deltas.to(self.device).repeat_interleave(c, dim=0)
        position_ids = positions.unsqueeze(0).expand(3, n * c, width)
        attention_mask = torch.ones(
            (n * c, prefix_length + width), dtype=torch.long, device=self.device
        )
        answers = model(
            input_ids=tokens,
            past_key_values=cache,
            position_ids=position_ids,
            attention_mask=attention_mask,
            use_cache=True,
        )
        # logits at answer position j-1 predict answer token j (j >= 1)
        log_probs = torch.log_softmax(answers.logits[:, :-1, :].float(), dim=-1)
        picked = log_probs.gather(2, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)  # (N*C, W-1)
        valid = torch.arange(1, width, device=self.device).unsqueeze(0) < lengths.repeat(
            n
        ).unsqueeze(1)
        rest = (picked * valid).sum(dim=1).view(n, c)
        return scores + rest

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        scores = self.class_log_likelihoods(images)
        probabilities = torch.softmax(scores, dim=-1).cpu().numpy()
        return check_probabilities(probabilities, len(images), len(self.classes))
