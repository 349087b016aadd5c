"""An eyes-devine install every user can read, for tests that run it as another user.

The test interpreter and this checkout may sit under /root, which other users
cannot enter.  This builds a venv in /tmp with a copy of the system Python
(``--copies``: a capability set on it lands on that copy, not on /usr/bin) and
bind-mounts the checkout and the test interpreter's site-packages next to it,
so nothing is installed and nothing is fetched.
"""

from __future__ import annotations

import json
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import eyes_devine


@dataclass
class Install:
    root: Path
    python: Path
    """The venv's own interpreter binary (a copy, not a link)."""
    command: Path
    """Its `eyes-devine` entry point, with a #! line to ``python``."""
    mounts: list[Path] = field(default_factory=list)

    def close(self) -> None:
        for mount in reversed(self.mounts):
            subprocess.run(["umount", str(mount)], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def build(system_python: str = "/usr/bin/python3") -> Install:
    """Raises RuntimeError when this machine cannot make one (no matching system Python, no mount)."""
    version = subprocess.run([system_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
    wanted = "{}.{}".format(*sys.version_info[:2])
    if version.returncode != 0 or version.stdout.strip() != wanted:
        raise RuntimeError(f"{system_python} is not Python {wanted}")
    root = Path(tempfile.mkdtemp(prefix="edt-inst-", dir="/tmp"))
    root.chmod(0o755)
    install = Install(root, root / "venv" / "bin" / "python3", root / "venv" / "bin" / "eyes-devine")
    try:
        subprocess.run([system_python, "-m", "venv", "--copies", "--without-pip", str(root / "venv")], check=True,
                       capture_output=True)
        sources = {"src": Path(eyes_devine.__file__).resolve().parents[1],
                   "site": Path(sysconfig.get_paths()["purelib"])}
        for name, source in sources.items():
            target = root / name
            target.mkdir()
            subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], check=True,
                           capture_output=True)
            install.mounts.append(target)
        site = next((root / "venv" / "lib").glob("python3*/site-packages"))
        (site / "eyes_devine_test.pth").write_text(f"{root / 'src'}\n{root / 'site'}\n")
        install.command.write_text(f"#!{install.python}\nimport sys\nfrom eyes_devine.cli import main\n"
                                   "sys.exit(main())\n")
        install.command.chmod(0o755)
        subprocess.run(["chmod", "-R", "a+rX", str(root / "venv")], check=True)
    except (subprocess.CalledProcessError, StopIteration, OSError) as error:
        install.close()
        raise RuntimeError(f"cannot build a shared install: {error}") from None
    return install


def run_as(user: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    """``argv`` as ``user`` with no capabilities inherited from us (the file's own still apply)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 60)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **kwargs.pop("env", {})}
    account = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups",
                           "--inh-caps=-all", *argv], env=env, **kwargs)


def open_to_nobody(folder: Path) -> None:
    """Let `nobody` traverse the temporary directories down to ``folder``: its data directory then decides."""
    for parent in (folder, *folder.parents):
        if str(parent).startswith("/tmp/"):
            parent.chmod(parent.stat().st_mode | 0o711)


def log_until_capturing(run: subprocess.Popen) -> list[dict]:
    """A `run --log-format json`'s log lines up to "capturing" (its stderr a text pipe); fails if it exits first."""
    assert run.stderr is not None
    log: list[dict] = []
    while not any(line["msg"] == "capturing" for line in log):
        line = run.stderr.readline()
        assert line, f"run exited {run.wait()}: {log}"
        log.append(json.loads(line))
    return log
