"""Random-weight Qwen2.5-VL checkpoints with a locally built tokenizer (tests and benchmarks).

Nothing is downloaded: the byte-level BPE tokenizer is trained here on a few sentences and carries
the Qwen special tokens; the image processor is transformers' Qwen2-VL one.
`save_tiny_qwen25vl` writes a
`save_pretrained` folder that the `vlm` backend loads like any real checkpoint.
Imports: torch, transformers, tokenizers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pizza_inference import CLASSES

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

QWEN25_VL_3B_TEXT = {
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 128000,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [16, 24, 24],
    },
}
"""Text model of Qwen2.5-VL-3B-Instruct (config.json of the public checkpoint)."""

QWEN25_VL_3B_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "in_channels": 3,
    "hidden_act": "silu",
}

TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 1000000.0,
        "mrope_section": [2, 3, 3],
    },
}
TINY_VISION = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "out_hidden_size": 64,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [1],
    "in_channels": 3,
    "hidden_act": "silu",
}

TINY_IMAGE_SIZE = 112
"""Tiny models see 112 x 112 images (16 visual tokens): cheap on a CPU."""

_CORPUS = [
    "You are a helpful assistant.",
    "What kind of pizza is shown in the image? Answer with one word: basic, burnt, combined, "
    "mixed, progression or segment.",
    *CLASSES,
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,:;!?'\"()-_/\n",
]


def build_tokenizer(vocab_size: int = 300) -> Any:
    """A byte-level BPE `PreTrainedTokenizerFast` with the Qwen special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )


def build_image_processor(max_pixels: int = 1024 * 1024) -> Any:
    """Qwen2-VL image processor (the PIL one: the fast one needs torchvision)."""
    try:
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor  # noqa: PLC0415
    except ImportError:  # older transformers
        from transformers import Qwen2VLImageProcessor as ImageProcessor  # type: ignore[assignment]  # noqa: PLC0415
    return ImageProcessor(
        min_pixels=56 * 56,
        max_pixels=max_pixels,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )


def build_config(tokenizer: Any, *, text: dict[str, Any], vision: dict[str, Any]) -> Any:
    from transformers import Qwen2_5_VLConfig  # noqa: PLC0415

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(text)
    text.setdefault("vocab_size", max(len(tokenizer), 64))
    text["bos_token_id"] = ids["<|endoftext|>"]
    text["eos_token_id"] = ids["<|im_end|>"]
    tie = text.pop("tie_word_embeddings", False)
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(vision),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie,
    )


def build_model(
    config: Any, *, dtype: torch.dtype = torch.float32, device: str = "cpu", seed: int = 0
) -> Any:
    """Random-initialised `Qwen2_5_VLForConditionalGeneration`, built directly on `device`."""
    from transformers import Qwen2_5_VLForConditionalGeneration  # noqa: PLC0415

    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(  # type: ignore[no-untyped-call]
            config, dtype=dtype
        )
    return model.eval()


def save_tiny_qwen25vl(directory: Path, seed: int = 0) -> Path:
    """Writes a tiny random Qwen2.5-VL (model, tokenizer, image processor) with save_pretrained."""
    tokenizer = build_tokenizer()
    model = build_model(build_config(tokenizer, text=TINY_TEXT, vision=TINY_VISION), seed=seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    build_image_processor(max_pixels=TINY_IMAGE_SIZE**2).save_pretrained(directory)
    return directory
