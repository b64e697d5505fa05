"""SAEBench 0.6.0 autointerp's explanation and scoring prompts (its protocol, so our score can be
put beside theirs): wording as in `sae_bench/evals/autointerp/main.py`, with demonstrations.

The explainer sees contexts strongest first with active tokens marked `<<tok>>`; the scorer sees
the shuffled held-out contexts unmarked, numbered from 1, and answers the comma-separated numbers
of those where the latent fires, or "None". Newlines in text are shown as "↵" and U+FFFD removed,
as SAEBench does.
"""

from __future__ import annotations

VERSION = "saebench_v1"

EXPLAIN_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron activates on some particular "
    "word/words/substring/concept in a short document. The activating words in each document are "
    "indicated with << ... >>. We will give you a list of documents on which the neuron activates, in "
    "order from most strongly activating to least strongly activating. Look at the parts of the document "
    "the neuron activates for and summarize in a single sentence what the neuron is activating on. Try "
    "not to be overly specific in your explanation. Note that some neurons will activate only on specific "
    "words or substrings, but others will activate on most/all words in a sentence provided that sentence "
    "contains some particular concept. Your explanation should cover most or all activating words (for "
    "example, don't give an explanation which is specific to a single word if all words in a sentence "
    "cause the neuron to activate). Pay attention to things like the capitalization and punctuation of the "
    "activating words or concepts, if that seems relevant. Keep the explanation as short and simple as "
    "possible, limited to 20 words or less. Omit punctuation and formatting. You should avoid giving long "
    "lists of words."
    " Some examples: \"This neuron activates on the word 'knows' in rhetorical questions\", and \"This "
    "neuron activates on verbs related to decision-making and preferences\", and \"This neuron activates on "
    "the substring 'Ent' at the start of words\", and \"This neuron activates on text about government "
    "economic policy\"."
)

SCORE_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron activates on some particular "
    "word/words/substring/concept in a short document. You will be given a short explanation of what this "
    "neuron activates for, and then be shown {n} example sequences in random order. You will have to return "
    "a comma-separated list of the examples where you think the neuron should activate at least once, on ANY "
    "of the words or substrings in the document. For example, your response might look like \"{demo}\". Try "
    "not to be overly specific in your interpretation of the explanation. If you think there are no examples "
    "where the neuron will activate, you should just respond with \"None\". You should include nothing else "
    "in your response other than comma-separated numbers or the word \"None\" - this is important."
)

MAX_TOKENS_EXPLANATION = 30


def render(tokens, active=None) -> str:
    """Concatenated tokens, `<<tok>>` around each active one when `active` is given."""
    marks = active if active is not None else [False] * len(tokens)
    text = "".join(f"<<{t}>>" if on else t for t, on in zip(tokens, marks))
    return text.replace("\ufffd", "").replace("\n", "↵")


def explain_messages(shown: list[str]) -> list[dict[str, str]]:
    examples = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(shown))
    return [{"role": "system", "content": EXPLAIN_SYSTEM},
            {"role": "user", "content": f"The activating documents are given below:\n\n{examples}"}]


def parse_explanation(text: str) -> str:
    """The part after the last "activates on", without a final full stop (SAEBench's rule)."""
    return text.split("activates on")[-1].rstrip(".").strip()


def score_messages(explanation: str, shown: list[str], demo: list[int]) -> list[dict[str, str]]:
    examples = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(shown))
    system = SCORE_SYSTEM.format(n=len(shown), demo=", ".join(str(i) for i in demo))
    user = f"Here is the explanation: this neuron fires on {explanation}.\n\nHere are the examples:\n\n{examples}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def score_max_tokens(n_shown: int) -> int:
    return 2 * n_shown + 5


def parse_numbers(text: str) -> list[int] | None:
    """The predicted example numbers; [] for "None"; None when the answer is not a number list."""
    parts = [p.strip() for p in text.strip().rstrip(".").replace("and", ",").replace("None", "").split(",")]
    parts = [p for p in parts if p]
    if not all(p.isdigit() for p in parts):
        return None
    return [int(p) for p in parts]
