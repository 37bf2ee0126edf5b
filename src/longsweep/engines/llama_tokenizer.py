"""The exact tokenizer of a GGUF model: its vocabulary (``vocab_only``) and its chat template.

The llama.cpp engine renders and tokenizes prompts with this same class, so a
count made while planning is the count the engine evaluates.
"""

from __future__ import annotations

import threading
from typing import Any

from longsweep.engines.gguf_bpe import fast_bpe_for
from longsweep.tokens import Message, merge_system


def _import_llama_cpp():
    try:
        import llama_cpp
        from llama_cpp import llama_chat_format
    except ImportError as e:
        raise ImportError(
            "the llama.cpp backend needs llama-cpp-python: pip install 'longsweep[llama]' "
            f"(it compiles on install) ({e})") from None
    return llama_cpp, llama_chat_format


# llama-cpp-python silences a load by pointing fds 1 and 2 at /dev/null and back (dup2). Two loads at once
# (two models planned in two threads) interleave the save and restore, and the process's stdout and stderr
# stay on /dev/null for good: one load at a time.
_LOAD_LOCK = threading.Lock()


class LlamaCppTokenizer:
    exact = True

    def __init__(self, model_path: str | None = None, *, llama: Any = None, supports_system: bool = True,
                 fast: bool = True):
        llama_cpp, chat_format = _import_llama_cpp()
        if llama is None:
            from llama_cpp._utils import suppress_stdout_stderr
            # llama.cpp logs a context warning in vocab-only mode
            with _LOAD_LOCK, suppress_stdout_stderr(disable=False):
                llama = llama_cpp.Llama(model_path=model_path, vocab_only=True, verbose=False)
        self._llama = llama
        # Planning (a GGUF path, no engine): tiktoken's BPE where it is proven to give llama.cpp's ids.
        # The engine (``llama=``) always tokenizes with llama.cpp itself.
        self._fast = fast_bpe_for(model_path) if model_path and fast else None
        self.supports_system = supports_system
        self.name = f"llama.cpp:{(model_path or llama.model_path).rsplit('/', 1)[-1]}" + ("+fast-bpe" if self._fast else "")
        self.releases_gil = self._fast is None  # llama.cpp's tokenizer does; tiktoken's here gains nothing from threads
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{self.name}: the GGUF has no chat template (tokenizer.chat_template)")
        eos, bos = llama.token_eos(), llama.token_bos()
        self._formatter = chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _format(self, messages: list[Message]):
        msgs = messages if self.supports_system else merge_system(messages)
        return self._formatter(messages=msgs)

    def encode(self, text: str) -> list[int]:
        if self._fast is not None and (ids := self._fast.encode(text)) is not None:
            return ids
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def render(self, messages: list[Message]) -> str:
        return self._format(messages).prompt

    def encode_messages(self, messages: list[Message]) -> list[int]:
        res = self._format(messages)
        if self._fast is not None and (ids := self._fast.encode_special(res.prompt, not res.added_special)) is not None:
            return ids
        return self._llama.tokenize(res.prompt.encode("utf-8"), add_bos=not res.added_special, special=True)
