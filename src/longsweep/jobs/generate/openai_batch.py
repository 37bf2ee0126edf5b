"""OpenAI Batch JSONL lines as ``generate`` prompts (the format ``vllm run-batch`` reads).

A line ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`` becomes our line
``{"id": custom_id, "messages": body.messages, <sampling>}``: ``max_tokens`` (or ``max_completion_tokens``),
``temperature``, ``top_p``, ``seed``, ``stop``, ``response_format`` with a JSON schema (``json_schema``)
or ``{"type": "json_object"}`` (any object). ``body.model`` is ignored (``--model`` decides). A field we
cannot honour (``tools``, ``n`` > 1, image parts, another URL) is that line's error, named, never dropped.
Lines are told apart by their keys, so a file may hold both formats.
"""

from __future__ import annotations

from typing import Any

URLS = ("/v1/chat/completions",)
SAMPLING = ("temperature", "top_p", "seed", "stop", "max_tokens")
IGNORED = ("model", "user", "metadata", "store")


def is_batch_line(obj: Any) -> bool:
    return isinstance(obj, dict) and "custom_id" in obj and "body" in obj


def _content(i: int, content: Any) -> Any:
    """A message's content: a string, or a list of text parts joined (other parts: the line's error)."""
    if not isinstance(content, list):
        return content
    texts = []
    for k, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ValueError(f"body.messages[{i}].content[{k}]: only text parts are supported")
        texts.append(part["text"])
    return "".join(texts)


def _response_format(rf: Any) -> dict[str, Any]:
    if not isinstance(rf, dict) or rf.get("type") not in ("json_schema", "json_object", "text"):
        raise ValueError("body.response_format: expected type json_schema, json_object or text")
    if rf["type"] == "text":
        return {}
    if rf["type"] == "json_object":
        return {"json_schema": {"type": "object"}}
    schema = (rf.get("json_schema") or {}).get("schema") if isinstance(rf.get("json_schema"), dict) else None
    if not isinstance(schema, dict):
        raise ValueError("body.response_format.json_schema.schema: expected an object")
    return {"json_schema": schema}


def batch_to_prompt(obj: dict[str, Any]) -> dict[str, Any]:
    """Our prompt line for one batch line; ``ValueError`` naming the field otherwise."""
    if obj.get("method", "POST") != "POST":
        raise ValueError(f"method: expected POST, got {obj.get('method')!r}")
    if obj.get("url", URLS[0]) not in URLS:
        raise ValueError(f"url: only {', '.join(URLS)} is supported, got {obj.get('url')!r}")
    body = obj["body"]
    if not isinstance(body, dict):
        raise ValueError("body: expected an object")
    unknown = set(body) - {"messages", "max_completion_tokens", "response_format", "n", "stream", *SAMPLING,
                           *IGNORED}
    if unknown:
        raise ValueError(f"body: not supported by longsweep generate: {', '.join(sorted(unknown))}")
    if body.get("n", 1) != 1 or body.get("stream"):
        raise ValueError("body: n > 1 and stream are not supported")
    out: dict[str, Any] = {"id": obj["custom_id"]}
    msgs = body.get("messages")
    if isinstance(msgs, list):
        msgs = [{**m, "content": _content(i, m.get("content"))} if isinstance(m, dict) else m
                for i, m in enumerate(msgs)]
    if msgs is not None:
        out["messages"] = msgs
    out.update({k: body[k] for k in SAMPLING if k in body})
    if "max_completion_tokens" in body:
        if "max_tokens" in body and body["max_tokens"] != body["max_completion_tokens"]:
            raise ValueError("body: max_tokens and max_completion_tokens differ")
        out["max_tokens"] = body["max_completion_tokens"]
    if "response_format" in body:
        out.update(_response_format(body["response_format"]))
    return out
