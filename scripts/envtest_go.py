"""The Go toolchain envtest builds with: found once, run with a pinned environment, checked.

Why apart: every binary envtest provisions is built from the Go module proxy, and each build
needs the same things from Go (locate it, run it with ``CGO_ENABLED=0``/``GOWORK=off``, report a
failure with its output, refuse a toolchain older than the module's ``go`` directive, download a
module); keeping that here lets the build recipes read as recipes.

Only the standard library is used so the script runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envtest_cache import KUBERNETES_VERSION, EnvtestError, is_executable_file, log

#: The ``go`` directive of a go.mod (``go 1.26`` or ``go 1.26.0``).
GO_DIRECTIVE = re.compile(r"^go\s+(\d+)\.(\d+)(?:\.\d+)?\s*$", re.MULTILINE)
_GO_VERSION_OUTPUT = re.compile(r"\bgo(\d+)\.(\d+)")


@dataclass(frozen=True)
class GoToolchain:
    """A located ``go`` executable and the environment every invocation of it uses."""

    executable: Path
    environ: dict[str, str]

    def run(self, args: Sequence[str], cwd: Path, what: str) -> str:
        """Run ``go <args>`` in ``cwd``; raise :class:`EnvtestError` naming ``what`` on failure."""
        command = [str(self.executable), *args]
        log(f"running ({what}): {shlex.join(command)}")
        try:
            completed = subprocess.run(
                command,
                cwd=cwd,
                env=self.environ,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as error:
            raise EnvtestError(f"could not run {command[0]} for {what}: {error}") from error
        if completed.returncode != 0:
            # `go mod download -json` reports its error in the JSON on stdout, not on stderr.
            output = "\n".join(part for part in (completed.stdout.strip(), completed.stderr.strip()) if part)
            tail = "\n".join(output.splitlines()[-40:])
            raise EnvtestError(
                f"{what} failed (exit {completed.returncode}) running: {shlex.join(command)}\nin {cwd}\n{tail}"
            )
        return completed.stdout

    def with_env(self, **overrides: str) -> GoToolchain:
        """Return the same toolchain with extra environment variables (e.g. ``GOBIN``)."""
        return GoToolchain(self.executable, {**self.environ, **overrides})


def sanitized_goflags(goflags: str) -> str:
    """Drop inherited ``-mod=...`` flags (a stray ``-mod=vendor`` breaks the wrapper module)."""
    kept = [flag for flag in goflags.split() if not flag.startswith("-mod=")]
    return " ".join([*kept, "-mod=mod"])


def find_go(purpose: str = "building kube-apiserver", alternative: str = "") -> GoToolchain:
    """Locate ``go`` (``$GO``, then ``PATH``, then ``/usr/local/go/bin/go``) and set up its env.

    ``purpose`` and ``alternative`` only shape the error message, so it names the binary that
    could not be built and the way around building it.

    The environment pins ``CGO_ENABLED=0`` (a static binary, no C toolchain needed), ``GOWORK=off``
    (a go.work in a parent directory must not leak into the wrapper module) and sane ``GOFLAGS``.
    """
    candidates: list[str] = []
    if os.environ.get("GO"):
        candidates.append(os.environ["GO"])
    on_path = shutil.which("go")
    if on_path:
        candidates.append(on_path)
    candidates.append("/usr/local/go/bin/go")
    for candidate in candidates:
        path = Path(candidate)
        if is_executable_file(path):
            environ = dict(os.environ)
            environ["CGO_ENABLED"] = "0"
            environ["GOWORK"] = "off"
            environ["GO111MODULE"] = "on"
            environ["GOFLAGS"] = sanitized_goflags(environ.get("GOFLAGS", ""))
            return GoToolchain(path, environ)
    alternative = alternative or "set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd"
    raise EnvtestError(
        f"the Go toolchain is missing: {purpose} needs `go` "
        f"(looked at $GO, PATH and /usr/local/go/bin/go: {', '.join(candidates)}). "
        f"Install Go, or {alternative}."
    )


def check_go_version(
    go: GoToolchain, go_mod_text: str, workdir: Path, module: str = f"k8s.io/kubernetes {KUBERNETES_VERSION}"
) -> None:
    """Fail early and clearly when the local Go is older than the module's ``go`` directive.

    With ``GOTOOLCHAIN=local`` an old Go would otherwise fail deep inside the build; with any other
    setting Go fetches the newer toolchain from the module proxy by itself.
    """
    wanted = GO_DIRECTIVE.search(go_mod_text)
    have = _GO_VERSION_OUTPUT.search(go.run(["version"], workdir, "go version"))
    if wanted is None or have is None:
        return
    need = (int(wanted.group(1)), int(wanted.group(2)))
    got = (int(have.group(1)), int(have.group(2)))
    toolchain = go.run(["env", "GOTOOLCHAIN"], workdir, "go env GOTOOLCHAIN").strip()
    if got < need and toolchain == "local":
        raise EnvtestError(
            f"{module} needs Go >= {need[0]}.{need[1]}, but "
            f"{go.executable} is go{got[0]}.{got[1]} and GOTOOLCHAIN=local forbids switching"
        )


def download_module(go: GoToolchain, module: str, version: str, workdir: Path) -> dict[str, str]:
    """``go mod download -json module@version`` and return the JSON record."""
    output = go.run(["mod", "download", "-json", f"{module}@{version}"], workdir, f"download {module}")
    try:
        record = json.loads(output)
    except ValueError as error:
        raise EnvtestError(f"unexpected `go mod download -json` output for {module}: {output!r}") from error
    if not isinstance(record, dict) or record.get("Error"):
        raise EnvtestError(f"downloading {module}@{version} failed: {record}")
    return {str(key): str(value) for key, value in record.items()}
