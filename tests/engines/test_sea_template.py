"""SEA-E's chat layout: the instruction as the system message, the paper as the user message.

A local Hugging Face tokenizer folder (a small byte-level BPE trained here, and a Mistral-style
template that, like SEA-E's, reads its system text only from a system message) shows that
folding the instruction into the user turn cannot render, and that the ``sea`` format's
messages render and are counted exactly.
"""

import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from longsweep.config import get_model  # noqa: E402
from longsweep.engines.hf_tokenizer import HFTokenizer  # noqa: E402
from longsweep.errors import ConfigError  # noqa: E402
from longsweep.papers.formats import format_for_model  # noqa: E402

# Mistral v0.2's layout; the system text exists only when a system message does.
SEA_STYLE_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{{ bos_token }}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- if loop.index0 == 0 -%}{{ '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- elif message['role'] == 'user' -%}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- else -%}{{ message['content'] + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
)

CORPUS = [
    "The paper proposes a learning rate schedule for large batch training and evaluates it on images.",
    "Summary Strengths Weaknesses Questions Soundness Presentation Contribution Rating Paper Decision",
    "[INST] You are a reviewer. [/INST] 1 poor 2 fair 3 good 4 excellent accept reject",
]


@pytest.fixture(scope="module")
def sea_tokenizer_dir(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    d = tmp_path_factory.mktemp("sea-e-tokenizer")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 10, trainer)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "model_max_length": 32768, "chat_template": SEA_STYLE_TEMPLATE}))
    return d


def _sea_messages():
    fmt = format_for_model("ECNU-SEA/SEA-E", get_model("sea-e").prompt_family)
    assert fmt.name == "sea"
    return fmt.messages("The paper proposes a learning rate schedule.\n\n# 1 Introduction\nLarge batches.",
                        version="v1", context="the flaw injected in v2")


def test_registry_gives_sea_e_a_system_role():
    spec = get_model("sea-e")
    assert spec.supports_system_role is True and spec.prompt_family == "sea"
    msgs = _sea_messages()
    assert [m["role"] for m in msgs] == ["system", "user"]
    # the instruction alone is the system message; the paper (and its context) alone the user message
    assert "**Paper Decision:**" in msgs[0]["content"] and "learning rate" not in msgs[0]["content"]
    assert msgs[1]["content"].startswith("The paper proposes") and "**Summary:**" not in msgs[1]["content"]


def test_folding_the_instruction_into_the_user_turn_cannot_render(sea_tokenizer_dir):
    folded = HFTokenizer(str(sea_tokenizer_dir), supports_system=False)  # the old registry setting
    with pytest.raises(ConfigError, match="system_message.*undefined.*supports_system_role"):
        folded.render(_sea_messages())
    # the template itself refuses a conversation without a system message
    from transformers import AutoTokenizer
    raw = AutoTokenizer.from_pretrained(str(sea_tokenizer_dir))
    with pytest.raises(Exception, match="'system_message' is undefined"):
        raw.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)


def test_sea_messages_render_and_count_exactly(sea_tokenizer_dir):
    tok = HFTokenizer(str(sea_tokenizer_dir), supports_system=get_model("sea-e").supports_system_role)
    msgs = _sea_messages()
    text = tok.render(msgs)
    assert text.startswith("<s>[INST] " + msgs[0]["content"] + "\n\n" + msgs[1]["content"])
    assert text.endswith(" [/INST]")
    ids = tok.encode_messages(msgs)
    assert ids == tok._tok.encode(text, add_special_tokens=False)
    assert ids.count(tok._tok.convert_tokens_to_ids("<s>")) == 1  # one BOS, none added twice
    assert tok.decode(ids) == text
    # the same ids as the library's own tokenized rendering
    own = tok._tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    own = own["input_ids"] if not isinstance(own, list) else own
    assert ids == list(own)
