"""``seqlab chat MODEL_DIR``: talk to a trained dialogue model; the history is kept between turns.

At a terminal every line typed is your turn and the model's reply is printed; both join the history, of which the
last ``--history K`` turns are the context of the next reply (default: what the model was trained with).  Type
``/reset`` to start a new dialogue.  From a file or a pipe (``-i F`` or stdin) each line is a turn, a blank line
starts a new dialogue, and only the replies are printed, one per line.  ``--reset`` forgets the history after
every reply (every line its own one-turn dialogue).
"""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, Iterator

from seqlab.commands.shared import add_quantize_argument, add_search_arguments, decode_config_from_args
from seqlab.errors import SeqlabError

HELP = "talk to a trained dialogue model (keeps the history; /reset starts over)"
RESET = "/reset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir")
    parser.add_argument("-i", "--input", help="turns, one per line (blank line: a new dialogue); default stdin")
    parser.add_argument("--history", type=int, help="turns of context per reply (default: the model's)")
    parser.add_argument("--reset", action="store_true", help="forget the history after every reply")
    add_search_arguments(parser, nbest=False)  # one reply per turn
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    add_quantize_argument(parser)


class Conversation:
    """The turns so far (yours and the model's, alternating) and the reply to the next one."""

    def __init__(self, responder, history: int, reset: bool = False):
        self.responder, self.history, self.reset_each = responder, history, reset
        self.turns: list[str] = []

    def say(self, turn: str) -> str:
        self.turns.append(turn)
        reply = self.responder.reply([self.turns[-self.history:]])[0].text
        self.turns = [] if self.reset_each else self.turns + [reply]
        return reply

    def reset(self) -> None:
        self.turns = []


def run(args: argparse.Namespace) -> int:
    from seqlab.commands.shared import use_interactive
    from seqlab.tasks import load_model_dir
    from seqlab.tasks.dialogue import Responder

    if args.history is not None and args.history < 1:
        raise SeqlabError(f"--history: must be >= 1, got {args.history}")
    loaded = load_model_dir(args.model_dir, args.checkpoint, task="dialogue", quantize=args.quantize)
    responder = Responder(loaded, decode_config_from_args(loaded.config.decode, args), batch_size=1)
    conversation = Conversation(responder, args.history or loaded.preprocessing.history, args.reset)
    interactive = use_interactive(args.input)
    for line in (typed_turns() if interactive else file_turns(args.input)):
        if line is None or line.strip() == RESET:
            conversation.reset()
            if interactive:
                print("(new dialogue)", file=sys.stderr)
            continue
        print(conversation.say(line), flush=True)
    return 0


def typed_turns() -> Iterator[str]:
    from seqlab.commands.shared import interactive_lines

    print(f"type a turn; {RESET} starts a new dialogue, Ctrl-D ends", file=sys.stderr)
    yield from interactive_lines("you> ")


def file_turns(source: str | None) -> Iterable[str | None]:
    """The lines of a file or stdin; a blank line becomes None (a new dialogue)."""
    from seqlab.commands.shared import read_input_lines

    return [line if line.strip() else None for line in read_input_lines(source)]


add_predict_arguments, predict = add_arguments, run  # what `seqlab predict` runs for a dialogue model
