"""The exact tokenizer of a Hugging Face model folder (used for vLLM models).

Counts are exact: ``encode_messages`` tokenizes the very string the chat template renders, with
no second BOS. ``supports_system`` False folds a system message into the first user turn
(``tokens.merge_system``); a template that needs a system message (SEA-E's) then cannot render,
and says so with the registry field to change.
"""

from __future__ import annotations

import os

from longsweep.errors import ConfigError
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
        from jinja2.exceptions import TemplateError
        msgs = self._msgs(messages)
        try:
            return self._tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except TemplateError as e:
            roles = "/".join(m["role"] for m in msgs)
            raise ConfigError(
                f"{self.name}: the chat template cannot render a {roles} conversation ({e}); check the model's "
                f"supports_system_role in the registry (now {str(self.supports_system).lower()})") from e

    def encode_messages(self, messages: list[Message]) -> list[int]:
        # The rendered template already holds its special tokens: do not add a second BOS.
        return self._tok.encode(self.render(messages), add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids)
