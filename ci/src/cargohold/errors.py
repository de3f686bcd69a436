"""The one exception tree of cargohold.

Everything a user can fix is a ``CargoholdError``: the command line turns it
into exit code 2 and one line ``error: <what> — <how to fix it>``, without a
traceback. Anything else that escapes is our bug: exit code 1 and a traceback.
A failing step inside the engine (``dagger.ExecError``) is shown with the
tool's own stderr instead of a Dagger stack trace.

    CargoholdError
    ├── ConfigError          cargohold.toml or an override is invalid
    ├── EngineError          no Dagger engine could be resolved or started
    ├── RegistryError        the OCI registry refused or could not be reached
    │   └── RegistryUnreachableError  no answer at all (refused, reset, timed out), after the retries
    ├── BootstrapError       the local registry or a base image could not be made
    └── BuildContextError    a build context holds a venv, node_modules, weights, huge files
"""

from __future__ import annotations


class CargoholdError(Exception):
    """A problem the user can fix: one line saying what is wrong and how to fix it."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def one_line(self) -> str:
        """The message as the CLI prints it, hint included."""
        text = " ".join(str(self).split())
        return f"{text} — {self.hint}" if self.hint else text

    def lines(self) -> list[str]:
        """What the CLI prints, one ``error:`` line each."""
        return [self.one_line()]


class ConfigError(CargoholdError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str], source: str = "cargohold.toml") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))

    def lines(self) -> list[str]:
        """One line per problem, each naming the file, the key and the fix."""
        return [f"{self.source}: {p}" for p in self.problems]


class EngineError(CargoholdError):
    """No Dagger engine could be resolved, started or reached."""


class RegistryError(CargoholdError):
    """The OCI registry answered with an error or could not be reached."""


class RegistryUnreachableError(RegistryError):
    """No answer from the registry at all, after the retries: every other request to it would fail too."""


class BootstrapError(CargoholdError):
    """The local registry or a base image could not be brought up."""


class BuildContextError(CargoholdError):
    """A service's build context holds what must not be built from; one line per path."""

    def __init__(self, summary: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(summary, "remove them, or exclude them in the service's [context] table")

    def lines(self) -> list[str]:
        """The summary with its fix, then each offending path."""
        return [self.one_line(), *self.problems]
