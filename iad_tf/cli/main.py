"""``iad-tf``: the command group. Commands live one per module and load lazily, so
``iad-tf --help`` is instant and TensorFlow is imported only inside the commands that need it.
"""

from __future__ import annotations

import importlib
import os

import click

from iad_tf import __version__

#: command name -> "module:function" (each module defines one click command).
COMMANDS: dict[str, str] = {
    "build-records": "iad_tf.cli.build_records:build_records",
    "fit": "iad_tf.cli.fit:fit",
    "evaluate": "iad_tf.cli.evaluate:evaluate",
    "plot": "iad_tf.cli.evaluate:plot",
    "compare": "iad_tf.cli.evaluate:compare",
    "export": "iad_tf.cli.export:export",
    "predict": "iad_tf.cli.predict:predict",
    "synth": "iad_tf.cli.synth:synth",
    "remix": "iad_tf.cli.synth:remix",
    "demo": "iad_tf.cli.demo:demo",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attr = COMMANDS[cmd_name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("iad_tf"):
                return None  # command not built yet in this checkout
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="iad-tf")
def cli() -> None:
    """Instrument activation detection: which instruments play in every ~23 ms frame."""
    # TensorFlow's C++ start-up chatter (no CUDA on this machine, ...) is noise for a CLI user;
    # set when a command runs (not at import), and only where the user has not chosen a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
