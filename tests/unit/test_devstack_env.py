"""`make run` leaves its settings in var/dev.env for another shell of the checkout."""
import subprocess
import sys
from pathlib import Path

from syncsite import devstack


def test_dev_env_is_sourceable_and_private(tmp_path, monkeypatch):
    target = tmp_path / "dev.env"
    monkeypatch.setattr(devstack, "DEV_ENV", target)
    devstack._write_dev_env({"STOREFRONT_API_TOKEN": "tok-1", "ODD": "a b'c $HOME"})
    assert target.stat().st_mode & 0o077 == 0
    out = subprocess.run(["bash", "-c", f'. {target}; printf "%s|%s|" "$STOREFRONT_API_TOKEN" "$ODD"; '
                                        'command -v python'], capture_output=True, text=True, check=True).stdout
    token, odd, python = out.strip().split("|")
    assert (token, odd) == ("tok-1", "a b'c $HOME")
    assert Path(python).parent == Path(sys.executable).parent  # the stack's interpreter comes first
