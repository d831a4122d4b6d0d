"""``seqlab generate MODEL_DIR --prompt "..."``: continue a prompt with a trained language model.

The prompt's tokens are forced, then the model continues (greedy, or sampling with --sample/--temperature/
--top-k/--top-p; seeded).  Without a prompt it generates a random sentence from the start token.  ``--models DIR ...`` adds ensemble members
(one vocabulary): ``--ensemble mean`` decodes with their mean next-token probabilities, ``vote`` prints the
continuation most members give.
"""

from __future__ import annotations

import argparse
import sys

from seqlab.commands.shared import add_ensemble_arguments, add_quantize_argument
from seqlab.errors import SeqlabError

HELP = "generate text from a trained language model, optionally continuing a prompt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", help="a language model's directory (or give --models)")
    parser.add_argument("--prompt", help="text whose tokens are forced before generation starts (at a terminal, "
                        "without --prompt, every line typed is a prompt)")
    parser.add_argument("--max-tokens", type=int, default=50)
    parser.add_argument("--num", type=int, default=1, help="how many continuations (seeds seed, seed+1, ...)")
    parser.add_argument("--sample", action="store_true", help="sample (default: greedy)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_quantize_argument(parser)
    add_ensemble_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from seqlab.commands.shared import interactive_lines, load_members_from_args, use_interactive
    from seqlab.decoding.config import MAX_GENERATE_TOKENS, DecodeConfig, check_size
    from seqlab.ensemble import combine, vote_outputs
    from seqlab.tasks.language_model import generate

    if args.num < 1:
        raise SeqlabError(f"--num: must be >= 1, got {args.num}")
    check_size("max_tokens", args.max_tokens, MAX_GENERATE_TOKENS, low=0, why="tokens generated after the prompt")
    members = load_members_from_args(args, task="lm")
    voting = args.ensemble == "vote" and len(members) > 1
    loaded = members[0] if voting else combine(members, args.ensemble)

    def continue_prompt(prompt: str) -> None:
        warn_unreadable(loaded.preprocessing, prompt)
        for index in range(args.num):
            decode = DecodeConfig(strategy="sample" if args.sample else "greedy", temperature=args.temperature,
                                  top_k=args.top_k, top_p=args.top_p, seed=args.seed + index)

            def continuation(member) -> list[str]:
                return [generate(member.model, member.preprocessing, prompt, args.max_tokens, decode)]

            text = vote_outputs(members, continuation)[0] if voting else continuation(loaded)[0]
            print(text, flush=True)

    if args.prompt is None and use_interactive(None):  # a person at a terminal: every typed line is a prompt
        for line in interactive_lines("prompt> "):
            continue_prompt(line)
        return 0
    continue_prompt(args.prompt or "")
    return 0


def warn_unreadable(pre, prompt: str) -> None:
    """A prompt is read as the model can read it; say what that dropped instead of changing it quietly."""
    unreadable = pre.unreadable(prompt)
    if unreadable:
        what = "characters" if pre.level == "char" else "words"
        shown = " ".join(repr(piece) for piece in unreadable[:20]) + (" ..." if len(unreadable) > 20 else "")
        print(f"warning: the model's vocabulary lacks these {what} of the prompt, read as "
              f"{'dropped' if pre.level == 'char' else '<unk>'}: {shown}", file=sys.stderr)


add_predict_arguments, predict = add_arguments, run  # what `seqlab predict` runs for a language model
