"""The exact tokenizer of a Hugging Face model folder (used for vLLM models)."""

from __future__ import annotations

import os

from longsweep.tokens import Message, merge_system


class HFTokenizer:
    exact = True

    def __init__(self, name_or_path: str, *, supports_system: bool = True):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from transformers import AutoTokenizer
        except ImportError as e:
            raise ImportError(f"vLLM models need `transformers` for exact token counts (pip install vllm) ({e})") from None
        self._tok = AutoTokenizer.from_pretrained(name_or_path)
        self.supports_system = supports_system
        self.name = f"hf:{name_or_path.rstrip('/').rsplit('/', 1)[-1]}"

    def _msgs(self, messages: list[Message]) -> list[Message]:
        return messages if self.supports_system else merge_system(messages)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False)

    def render(self, messages: list[Message]) -> str:
        return self._tok.apply_chat_template(self._msgs(messages), tokenize=False, add_generation_prompt=True)

    def encode_messages(self, messages: list[Message]) -> list[int]:
        # The rendered template already holds its special tokens: do not add a second BOS.
        return self._tok.encode(self.render(messages), add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)
