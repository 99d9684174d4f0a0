"""`make run` leaves its settings in var/dev.env for another shell of the checkout."""
import subprocess

from syncsite import devstack


def test_dev_env_is_sourceable_and_private(tmp_path, monkeypatch):
    target = tmp_path / "dev.env"
    monkeypatch.setattr(devstack, "DEV_ENV", target)
    devstack._write_dev_env({"STOREFRONT_API_TOKEN": "tok-1", "ODD": "a b'c $HOME"})
    assert target.stat().st_mode & 0o077 == 0
    out = subprocess.run(["bash", "-c", f'. {target}; printf "%s|%s" "$STOREFRONT_API_TOKEN" "$ODD"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == "tok-1|a b'c $HOME"
