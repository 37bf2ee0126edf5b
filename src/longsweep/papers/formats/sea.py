"""``sea``: SEA-E's layout (ECNU-SEA/SEA-E, a Mistral-7B-Instruct-v0.2 fine-tune).

SEA's own inference sends the instruction as the SYSTEM message and the paper alone as the
USER message; SEA-E's chat template reads its system text only from a system message, so the
registry entry sets ``supports_system_role: true``. The answer is markdown sections::

    **Summary:** text
    **Strengths:** / **Weaknesses:** / **Questions:**   bullet lists
    **Soundness:** / **Presentation:** / **Contribution:**   "N label", 1 poor .. 4 excellent
    **Rating:**   "N label" on 1-10 (RATING_LABELS)
    **Paper Decision:**   "- Decision: Accept|Reject" and "- Reasons: ..."

SEA-E gives no confidence. Usable when the summary and all four scores are present; the
instruction can be replaced by SEA's own text with the registry's ``system_prompt_file``.
"""

from __future__ import annotations

import re

from longsweep.papers.formats import text as t
from longsweep.papers.formats.base import ParsedReview, ReviewFormat, finish, register, set_scores

SCORE_LABELS = {1: "poor", 2: "fair", 3: "good", 4: "excellent"}
RATING_LABELS = {
    1: "strong reject",
    2: "reject, significant issues present",
    3: "reject, not good enough",
    4: "possibly reject, but has redeeming facets",
    5: "marginally below the acceptance threshold",
    6: "marginally above the acceptance threshold",
    7: "accept, but needs minor improvements",
    8: "accept, good paper",
    9: "strong accept, excellent work",
    10: "strong accept, should be highlighted at the conference",
}
SECTIONS = ("Summary", "Strengths", "Weaknesses", "Questions", "Soundness", "Presentation", "Contribution",
            "Rating", "Paper Decision")


def _scale(labels: dict[int, str]) -> str:
    return "\n".join(f"    {n} {lab}" for n, lab in labels.items())


INSTRUCTION = (
    "You are an experienced, careful and fair reviewer for an academic machine learning venue. Review the "
    "paper given below. Organise the review in nine sections:\n"
    "1. Summary: what the paper does and claims, in 100 to 150 words.\n"
    "2. Strengths, Weaknesses, Questions: each as a list of bullet points, each point backed by concrete "
    "evidence from the paper where you can.\n"
    "3. Soundness, Presentation, Contribution: score each and write the score with its description from "
    "this scale:\n" + _scale(SCORE_LABELS) + "\n"
    "4. Rating: an overall rating, written with its description from this scale:\n" + _scale(RATING_LABELS) + "\n"
    "5. Paper Decision: Accept or Reject, and the reasons for it, judged on originality, soundness of the "
    "method, significance of the results, and clarity of the presentation.\n\n"
    "Write the review in exactly this layout:\n"
    "**Summary:**\n<summary>\n\n"
    "**Strengths:**\n- <strength>\n- <strength>\n\n"
    "**Weaknesses:**\n- <weakness>\n- <weakness>\n\n"
    "**Questions:**\n- <question>\n- <question>\n\n"
    "**Soundness:**\n<score and description>\n\n"
    "**Presentation:**\n<score and description>\n\n"
    "**Contribution:**\n<score and description>\n\n"
    "**Rating:**\n<rating and description>\n\n"
    "**Paper Decision:**\n- Decision: Accept or Reject\n- Reasons: <reasons>\n\n"
    "Be objective and constructive. The paper follows."
)

_NAMES = r"paper[ \t]+decision|summary|strengths?|weakness(?:es)?|questions?|soundness|presentation|" \
         r"contributions?|rating|confidence"
HEADING = re.compile(
    r"^[ \t]*(?P<hashes>#{1,6}[ \t]*)?(?P<bold>\*\*|__)?[ \t]*(?P<name>" + _NAMES + r")[ \t]*(?P<colon>:)?"
    r"[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*(?P<rest>[^\n]*)$", re.M | re.I)
_REASONS = re.compile(r"reasons?\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*)", re.I | re.S)
SCORES = ("soundness", "presentation", "contribution", "rating")


def _canon(name: str) -> str:
    if name.startswith("paper"):
        return "paper decision"
    for full in ("strengths", "weaknesses", "questions", "contribution"):
        if full.startswith(name[:6]):
            return full
    return name


def _decision_section(secs: dict[str, str], body: str) -> str | None:
    if "paper decision" in secs:
        return secs["paper decision"]
    m = t.DECISION_LINE.search(body)  # a "Decision: ..." line without its section heading
    return body[m.start():].strip() if m else None


@register
class SeaFormat(ReviewFormat):
    name = "sea"
    aliases = ("sea-e", "seae")
    seed_name = "SEA-E"
    instruction = INSTRUCTION
    required = ("summary", *SCORES)
    expected = ("summary", "strengths", "weaknesses", "questions", *SCORES, "decision")

    def parse(self, text: str) -> ParsedReview:
        body = t.strip_eos(text)
        r = ParsedReview(format=self.name, required=self.required)
        secs, repeated = t.split_sections(body, HEADING, _canon)
        if not secs:
            r.issues.append("no review sections found (**Summary:** ... **Paper Decision:**)")
            return r
        if repeated:
            r.issues.append("sections repeated, first kept: " + ", ".join(repeated))
        r.summary = t.text_or_none(secs.get("summary"))
        r.strengths, r.weaknesses, r.questions = (t.bullets(secs.get(k)) for k in ("strengths", "weaknesses",
                                                                                     "questions"))
        set_scores(r, secs, {k: k for k in (*SCORES, "confidence")})
        dec = _decision_section(secs, body)
        r.decision = t.decision(dec)
        reasons = _REASONS.search(dec or "")
        r.extra["decision_reasons"] = t.text_or_none(reasons.group(1)) if reasons else None
        r.seed_fields = {"summary": r.summary, "strengths": r.strengths, "weaknesses": r.weaknesses,
                         "questions": r.questions, "soundness": r.soundness, "presentation": r.presentation,
                         "contribution": r.contribution, "rating": r.rating, "paper_decision": dec}
        return finish(r, self.expected)
