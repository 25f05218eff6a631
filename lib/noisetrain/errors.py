"""The one error family of the pipeline: failures a user causes and can fix.

The CLIs print a :class:`NoisetrainError` as one line naming what is wrong and how to fix it;
any other exception is a bug and keeps its full traceback in the rule's log. Each subclass also
derives from the builtin it refines, so ``except ValueError`` keeps catching a bad value.
"""


class NoisetrainError(Exception):
    """An expected failure with a one-line explanation for the user."""


class ConfigError(NoisetrainError, ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


class DataError(NoisetrainError, RuntimeError):
    """A dataset or corruption file or folder is missing, unreadable or malformed."""


class CheckpointError(NoisetrainError, RuntimeError):
    """A model or checkpoint file is missing, corrupt, of another architecture or unwritable."""


class InputError(NoisetrainError, ValueError):
    """A library function was given a value outside what it accepts."""


class TrainingError(NoisetrainError, FloatingPointError):
    """Training diverged (non-finite loss, chance-level model, non-finite generator noise)."""


class Preempted(NoisetrainError, RuntimeError):
    """The job was asked to stop (SIGTERM, SIGUSR1) and left a checkpoint: rerun it to resume."""
