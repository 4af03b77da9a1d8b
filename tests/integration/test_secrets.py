"""A become password or vault value given to `rosenblatt` or ansible-playbook is never written anywhere.

Runs the model stage (which records model.json in the board's state folder) and the fleet report (probe,
board records, report files) on the controller stand-in, with a vaulted become password in the inventory,
with -K through the CLI and with -e through ansible-playbook, then searches every file those runs wrote
(runs/ with ansible-runner's artifacts, reports/, the stand-in board's state and model folders) and
everything printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import BIN, CLI, REPO, real_input, run_playbook

VAULT_SECRET = "vault-value-7d3f1c"
PROMPT_SECRET = "prompt-secret-19ab44"
EXTRA_SECRET = "extra-vars-secret-5e2c90"


def stand_in_inventory(root: Path, vault_password: Path) -> Path:
    inventory = root / "inventory"
    shutil.copytree(REPO / "tests/inventory/local", inventory, symlinks=False)
    encrypted = subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(vault_password),
         "--name", "ansible_become_password", VAULT_SECRET], capture_output=True, text=True, check=True).stdout
    (inventory / "group_vars/all/3-secrets.yml").write_text(encrypted)
    return inventory


def written_files(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.exists() for path in folder.rglob("*") if path.is_file()]


def test_secrets_never_reach_a_file_or_the_console(tmp_path: Path) -> None:
    vault_password = tmp_path / "vault-password"
    vault_password.write_text("correct horse battery staple\n")
    inventory = stand_in_inventory(tmp_path, vault_password)
    real_input("gemma-gguf")  # the stand-in's pinned model, already verified in the cache
    runs, reports, board = tmp_path / "runs", tmp_path / "reports", tmp_path / "board"
    env = dict(os.environ, ROSENBLATT_RUNS=str(runs), ROSENBLATT_REPORTS=str(reports),
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    on_board = ["-e", f"rosenblatt_state_dir={board}/state", "-e", f"model_install_dir={board}/models"]
    printed = []
    direct = run_playbook("-i", str(inventory), "--vault-password-file", str(vault_password),
                          "-e", f"ansible_become_password={EXTRA_SECRET}", *on_board, "playbooks/model.yml",
                          env={"ROSENBLATT_REPORTS": str(reports)})
    printed.append(direct.stdout + direct.stderr)
    assert direct.returncode == 0, printed[-1][-3000:]
    cli = subprocess.run([str(CLI), "-i", str(inventory), "-K", "--vault-password-file", str(vault_password),
                          *on_board, "fleet", "status"], input=PROMPT_SECRET + "\n", cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    printed.append(cli.stdout + cli.stderr)
    assert cli.returncode == 0, printed[-1][-3000:]
    refused = subprocess.run([str(CLI), "-i", str(inventory), "-e", f"ansible_become_password={EXTRA_SECRET}",
                              "fleet", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                             check=False)
    printed.append(refused.stdout + refused.stderr)
    assert refused.returncode == 2 and "use --ask-become-pass" in refused.stderr

    files = written_files(runs, reports, board)
    assert {"stdout", "fleet-latest.json", "model.json"} <= {path.name for path in files}  # each kind was searched
    for secret in (VAULT_SECRET, PROMPT_SECRET, EXTRA_SECRET):
        leaks = [str(path) for path in files if secret.encode() in path.read_bytes()]
        assert leaks == [], f"{secret} written to {leaks}"
        assert not any(secret in text for text in printed), f"{secret} printed"
