"""Small host-side helpers shared by the codec, training and the command lines."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tfgc.errors import OutputExistsError, TfgcError


def refuse_existing(path, force: bool) -> None:
    """An OutputExistsError if `path` exists and `force` is not set: checked before long work, and again on writing."""
    if Path(path).exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")


def check_output(path, force: bool) -> None:
    """Refuse, before any work, an output that write_atomic would refuse at the end: an existing file without
    `force`, a directory, a path whose folder does not exist, or a folder where no file can be made (no permission,
    a read-only filesystem): a file is made there and removed, as the OS's answer is the only sure one."""
    refuse_existing(path, force)
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TfgcError(f"cannot write {path}: folder {directory} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise cannot_write(path, e) from None
    os.close(fd)
    os.unlink(probe)


def cannot_write(path, error: OSError) -> TfgcError:
    """The one-line error of a failed write (permission, read-only filesystem, full disk, ...)."""
    return TfgcError(f"cannot write {path}: {error.strerror or first_line(error)}")


def first_line(error: BaseException) -> str:
    """An exception's message cut to one line (TensorFlow's and the checkpoint reader's run to many)."""
    return (str(error).splitlines() or [type(error).__name__])[0]


def shown(path) -> str:
    """A path as an error message shows it: as is, or quoted with escapes when it holds a line break or another
    character that would not print (a message is one line)."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return text if text.isprintable() else repr(text)


def write_atomic(path, data: bytes, force: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename, so a reader never sees half a file.

    Refuses to replace an existing file unless `force`.
    """
    path = Path(path)
    check_output(path, force)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise cannot_write(path, e) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the result should be like any other file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise cannot_write(path, e) from None
        raise


def write_directory(destination, write, force: bool = False) -> Path:
    """Run write(staging_folder) beside `destination`, then move the folder into place, so `destination` is either
    the old folder or the complete new one, never half of either. Refuses to replace it unless `force`."""
    destination = Path(destination)
    refuse_existing(destination, force)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
    except OSError as e:
        raise cannot_write(destination, e) from None
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; the result should be like any other folder
        write(staging)
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
            try:
                os.replace(staging, destination)
            except OSError:
                os.replace(old, destination)  # the old folder back in place: nothing the user had is lost
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, destination)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise cannot_write(destination, e) from None
        raise
    return destination


def cache_home() -> Path:
    """tfgc's folder of caches kept between runs: $XDG_CACHE_HOME/tfgc (~/.cache/tfgc)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfgc"


def available_memory():
    """Bytes of memory this process can still take (Linux: MemAvailable, lowered by a cgroup's limit), or None where
    that is not known."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:  # cgroup v2: a container's limit, less what it uses
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, min(found)) if found else None


def resident_mib() -> float:
    """This process's resident set size now, in MiB (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter (CUDA stubs and plugin registration, logged as errors on machines
    without a GPU) in the command lines, unless the user set TF_CPP_MIN_LOG_LEVEL. Python exceptions still surface."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Options' defaults in --help, where there is one to show and the help text does not name it already."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def program_name(module: str) -> str:
    """What the user typed to run us, for usage lines: an installed command's name (tfgc, tfgc-train) or
    `python -m MODULE`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return f"python -m {module}" if not name or name.endswith(".py") or name.startswith("-") else name


def version_text() -> str:
    """--version: tfgc's version and the versions of the stack it runs on (read from the installed packages'
    metadata, so that printing them imports nothing)."""
    from importlib import metadata

    import tfgc

    parts = []
    for package in ("tensorflow", "tensorflow-compression"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package} not installed")
    return f"tfgc {tfgc.__version__} ({', '.join(parts)}, Python {sys.version.split()[0]})"


def run_command(prog: str, command, interrupted: str = "interrupted") -> int:
    """Run a command-line tool's body: a TfgcError becomes one line on stderr and its exit code, never a traceback."""
    quiet_tensorflow()
    try:
        return command()
    except TfgcError as e:
        print(f"{prog}: error: {first_line(e)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130


class _LogProgress:
    """Progress for logs (not a terminal): a line at every tenth of the work, with the time so far."""

    def __init__(self, total: int, unit: str):
        self.total, self.done, self.started, self.unit = total, 0, time.monotonic(), unit
        self.step = max(1, total // 10)

    def add(self, n: int) -> None:
        self.done += n
        if self.done % self.step == 0 or self.done == self.total:
            print(f"{self.done}/{self.total} {self.unit}s, {time.monotonic() - self.started:.0f} s", file=sys.stderr,
                  flush=True)


def progress_bar(total: int, unit: str):
    """Progress over `total` pieces of work, each a `unit` (image, file, decode): Keras' bar on a terminal, a line
    at every tenth in a log."""
    if not sys.stderr.isatty():
        return _LogProgress(total, unit)
    import tensorflow as tf

    return tf.keras.utils.Progbar(total, unit_name=unit)
