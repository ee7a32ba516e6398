"""Which files of the code directory are copied to remote machines, and why the others are not (no SSH)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nascore.errors import EngineError
from nascore.evaluators import FunctionalEvaluator
from nascore.experiment import ExperimentConfig
from nascore.experiment.config import create_engine_for
from nascore_engines.training_service import RemoteMachine, TrainingServiceOptions
from nascore_engines.training_service.codesync import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, CodeDirectory
from nascore_engines.training_service.selection import FileSelector, check_limits

LOGGER = "nascore_engines.training_service.selection"


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def why(selection) -> dict[str, tuple[str, str]]:
    return {s.path: (s.kind, s.reason) for s in selection.skipped}


def test_secret_looking_files_are_not_copied_and_are_named_in_a_warning(tmp_path, caplog):
    code = tree(tmp_path / "code", {
        "train.py": "", "pkg/model.py": "", ".env": "TOKEN=1", ".env.production": "TOKEN=2", ".ssh/id_ed25519": "key",
        ".ssh/config": "Host x", "server.pem": "cert", "certs/tls.key": "key", "keys/id_rsa": "key",
        "keys/id_rsa.pub": "pub", "id_utils.py": "", "id_tools/__init__.py": "", ".netrc": "machine x",
    })
    with caplog.at_level(logging.INFO, logger=LOGGER):
        selection = CodeDirectory(code).select()
    assert sorted(selection.files) == ["id_tools/__init__.py", "id_utils.py", "pkg/model.py", "train.py"]
    skipped = why(selection)
    assert skipped == {
        ".env": ("secret", "looks like a secret (matches .env*)"),
        ".env.production": ("secret", "looks like a secret (matches .env*)"),
        ".netrc": ("secret", "looks like a secret (matches .netrc)"),
        ".ssh/": ("secret", "looks like a secret (matches .ssh/)"),  # the folder is not even entered
        "certs/tls.key": ("secret", "looks like a secret (matches *.key)"),
        "keys/id_rsa": ("secret", "looks like a secret (matches id_*)"),
        "keys/id_rsa.pub": ("secret", "looks like a secret (matches id_*)"),
        "server.pem": ("secret", "looks like a secret (matches *.pem)"),
    }
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    assert "look like secrets" in warning and ".ssh/" in warning and "server.pem" in warning
    assert "engine_options.code_include" in warning


def test_code_include_copies_the_secrets_the_user_names_and_nothing_else(tmp_path):
    code = tree(tmp_path / "code", {
        "train.py": "", "server.pem": "cert", "other.pem": "cert", ".ssh/config": "Host x", ".ssh/id_ed25519": "key",
        "data/small.csv": "1", "data/big.bin": "x" * 100, ".gitignore": "data/\n",
    })
    selection = CodeDirectory(code, include=["/server.pem", ".ssh/config", "data/small.csv"]).select()
    assert sorted(selection.files) == [".gitignore", ".ssh/config", "data/small.csv", "server.pem", "train.py"]
    skipped = why(selection)
    assert skipped[".ssh/id_ed25519"] == ("secret", "looks like a secret (matches .ssh/)")
    assert skipped["data/big.bin"] == ("ignored", ".gitignore:1: data/")  # the folder is ignored, only the named file is not
    assert skipped["other.pem"][0] == "secret"
    whole = CodeDirectory(code, include=[".ssh/"]).select()  # a folder named in code_include is copied whole
    assert {".ssh/config", ".ssh/id_ed25519"} <= set(whole.files)


def test_gitignore_nascoreignore_and_code_exclude(tmp_path):
    code = tree(tmp_path / "code", {
        ".gitignore": "# outputs\n*.log\n/checkpoints/\ndata/\n", ".nascoreignore": "!keep.log\nnotes.txt\n",
        "train.py": "", "a.log": "", "keep.log": "", "notes.txt": "", "checkpoints/last.ckpt": "",
        "pkg/checkpoints/kept.py": "", "data/x.csv": "", "pkg/.gitignore": "generated_*.py\n!generated_ok.py\n",
        "pkg/generated_a.py": "", "pkg/generated_ok.py": "", "pkg/real.py": "", "scratch/tmp.py": "",
        "pkg/__pycache__/real.cpython-311.pyc": "", "node_modules/x/index.js": "",
    })
    selection = CodeDirectory(code, exclude=["scratch/", "keep.log"]).select()
    assert sorted(selection.files) == [
        ".gitignore", ".nascoreignore", "pkg/.gitignore", "pkg/checkpoints/kept.py", "pkg/generated_ok.py",
        "pkg/real.py", "train.py",
    ]
    skipped = why(selection)
    assert skipped["a.log"] == ("ignored", ".gitignore:2: *.log")
    assert skipped["checkpoints/"] == ("ignored", ".gitignore:3: /checkpoints/")
    assert skipped["data/"] == ("ignored", ".gitignore:4: data/")
    assert skipped["notes.txt"] == ("ignored", ".nascoreignore:2: notes.txt")
    assert skipped["pkg/generated_a.py"] == ("ignored", "pkg/.gitignore:1: generated_*.py")
    assert skipped["scratch/"] == ("ignored", "engine_options.code_exclude:1: scratch/")
    assert skipped["keep.log"] == ("ignored", "engine_options.code_exclude:2: keep.log")  # code_exclude wins
    assert skipped["pkg/__pycache__/"] == ("ignored", "built-in defaults:1: __pycache__/")
    assert skipped["node_modules/"][0] == "ignored"
    # A .nascoreignore re-includes what the .gitignore beside it ignores.
    assert "keep.log" in CodeDirectory(code).select().files


def test_the_ignore_files_of_the_enclosing_git_work_tree_apply(tmp_path):
    repo = tree(tmp_path / "repo", {
        ".gitignore": "*.ckpt\n/src/local/\n", "src/.gitignore": "", "src/train.py": "", "src/model.ckpt": "",
        "src/local/x.py": "", ".git/info/exclude": "mine.txt\n", "src/mine.txt": "",
    })
    selection = CodeDirectory(repo / "src").select()
    assert sorted(selection.files) == [".gitignore", "train.py"]
    skipped = why(selection)
    assert skipped["model.ckpt"] == ("ignored", f"{repo / '.gitignore'}:1: *.ckpt")
    assert skipped["local/"] == ("ignored", f"{repo / '.gitignore'}:2: /src/local/")
    assert skipped["mine.txt"] == ("ignored", f"{repo / '.git/info/exclude'}:1: mine.txt")


def test_version_control_virtualenvs_and_the_experiment_directory_are_never_copied(tmp_path):
    code = tree(tmp_path / "code", {
        "train.py": "", ".git/HEAD": "", "myenv/pyvenv.cfg": "", "myenv/lib/x.py": "", "runs/1/db": "", ".hg/x": "",
    })
    selection = CodeDirectory(code, skip=[code / "runs"], include=["myenv/"]).select()
    assert sorted(selection.files) == ["train.py"]
    assert why(selection) == {
        ".git/": ("excluded", "version control"), ".hg/": ("excluded", "version control"),
        "myenv/": ("excluded", "a virtual environment"), "runs/": ("excluded", "the experiment directory"),
    }


def test_symbolic_links(tmp_path, caplog):
    outside = tree(tmp_path / "outside", {"secret.txt": "not yours", "folder/x.py": ""})
    code = tree(tmp_path / "code", {"train.py": "REAL", "pkg/util.py": "", ".env": "TOKEN"})
    (code / "to_outside.txt").symlink_to(outside / "secret.txt")
    (code / "pkg" / "relative_out.txt").symlink_to("../../outside/secret.txt")
    (code / "outside_folder").symlink_to(outside / "folder")
    (code / "alias.py").symlink_to("train.py")
    (code / "innocent.txt").symlink_to(".env")
    (code / "pkg_alias").symlink_to("pkg")
    (code / "dangling").symlink_to("no-such-file")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        selection = CodeDirectory(code).select()
    assert sorted(selection.files) == ["alias.py", "pkg/util.py", "train.py"]
    assert selection.files["alias.py"].source == (code / "train.py").resolve()  # copied with its target's content
    skipped = why(selection)
    assert skipped["to_outside.txt"] == ("outside-link", f"symbolic link to {outside / 'secret.txt'}, outside the code directory")
    assert skipped["pkg/relative_out.txt"][0] == "outside-link"
    assert skipped["outside_folder"] == ("outside-link", f"symbolic link to {outside / 'folder'}, outside the code directory")
    assert skipped["innocent.txt"] == ("link", "symbolic link to .env, which is not copied")  # no smuggling secrets
    assert skipped["pkg_alias/"] == ("link", "symbolic link to a folder, not followed")
    assert skipped["dangling"][0] == "unreadable" and "broken symbolic link" in skipped["dangling"][1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    link_warning = next(w for w in warnings if "point outside it" in w)
    assert "to_outside.txt" in link_warning and str(outside / "secret.txt") in link_warning


def test_the_size_limit_names_the_largest_files(tmp_path):
    code = tree(tmp_path / "code", {"train.py": "x" * 10, "data/big.bin": "x" * 5000, "data/medium.bin": "x" * 3000})
    with pytest.raises(EngineError) as info:
        CodeDirectory(code, max_size=4000).select()
    message = str(info.value)
    assert "more than engine_options.code_max_size (3.9 KB)" in message
    assert "the largest files: data/big.bin (4.9 KB), data/medium.bin (2.9 KB), train.py (10 B)" in message
    assert ".nascoreignore" in message and "engine_options.code_exclude" in message
    assert len(CodeDirectory(code, max_size=8010).select().files) == 3  # at the limit is fine


def test_the_file_count_limit_names_the_fullest_folders(tmp_path):
    code = tree(tmp_path / "code", {"train.py": "", **{f"images/{i}.png": "" for i in range(6)}, "big.bin": "x" * 99})
    with pytest.raises(EngineError) as info:
        check_limits(FileSelector(code).select(), max_size=None, max_files=5)
    message = str(info.value)
    assert "has 8 files" in message and "engine_options.code_max_files (5)" in message
    assert "the folders with the most files: images/ (6 files), ./ (2 files)" in message
    assert "the largest files: big.bin (99 B)" in message
    # The sync stops walking once the limit is passed: a huge folder is refused without listing all of it.
    partial = FileSelector(code).select(stop_after=5)
    assert partial.truncated and len(partial.files) == 6
    with pytest.raises(EngineError) as info:
        CodeDirectory(code, max_files=5).select()
    message = str(info.value)
    assert "has more than 5 files" in message and "engine_options.code_max_files (5)" in message
    assert "the largest files found before it stopped counting: big.bin (99 B)" in message


def test_settings_give_the_rules_and_default_limits(tmp_path):
    code = tree(tmp_path / "code", {"train.py": "", "a.pem": ""})
    directory = CodeDirectory.from_settings(TrainingServiceOptions(code_dir=code, code_include=["a.pem"]))
    assert (directory.max_size, directory.max_files) == (DEFAULT_MAX_SIZE, DEFAULT_MAX_FILES) == (100 * 2**20, 10_000)
    assert sorted(directory.select().files) == ["a.pem", "train.py"]
    limited = CodeDirectory.from_settings(TrainingServiceOptions(code_dir=code, code_max_size="1KB", code_max_files=7))
    assert (limited.max_size, limited.max_files) == (1024, 7)


def test_the_summary_is_logged_once_while_nothing_changes(tmp_path, caplog):
    code = tree(tmp_path / "code", {"train.py": "", ".env": "", "out.log": "", ".gitignore": "*.log\n"})
    directory = CodeDirectory(code)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        directory.select()
        directory.select()  # a second machine's sync
        summaries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
        assert summaries == [f"Code directory {code}: copying 2 file(s), 6 B; not copying 1 more path(s): "
                             "out.log (.gitignore:1: *.log)"]
        (code / "new.py").write_text("")
        directory.select()
    assert len([r for r in caplog.records if r.levelno == logging.INFO]) == 2


def test_an_unset_code_dir_is_refused_in_the_home_folder_and_at_the_root(tmp_path, monkeypatch):
    home = tree(tmp_path / "home", {".ssh/id_ed25519": "key", "train.py": ""})
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    with pytest.raises(EngineError) as info:
        CodeDirectory.from_settings(TrainingServiceOptions())
    message = str(info.value)
    assert f"the current folder {home.resolve()} (your home folder)" in message
    assert "set engine_options.code_dir" in message
    monkeypatch.chdir("/")
    with pytest.raises(EngineError, match=r"the current folder / \(the root folder\).*set engine_options.code_dir"):
        CodeDirectory.from_settings(TrainingServiceOptions())
    monkeypatch.chdir(home / ".ssh")  # anywhere else, the current folder is the default
    assert CodeDirectory.from_settings(TrainingServiceOptions()).root == (home / ".ssh").resolve()
    # Set on purpose, even the home folder is allowed: the secret rules still keep ~/.ssh home.
    assert sorted(CodeDirectory.from_settings(TrainingServiceOptions(code_dir=home)).select().files) == ["train.py"]


def remote_settings(tmp_path, **settings) -> ExperimentConfig:
    key = tmp_path / "id_key"
    key.write_text("a key file")
    service = TrainingServiceOptions(platform="remote", machines=[RemoteMachine(host="h", key_file=key)], **settings)
    return ExperimentConfig(engine="training-service", experiment_dir=tmp_path / "exp", engine_options=service)


def test_the_engine_check_refuses_a_code_directory_over_its_limits_before_connecting(tmp_path):
    code = tree(tmp_path / "code", {"train.py": "", "data.bin": "x" * 2048})
    config = remote_settings(tmp_path, code_dir=code, code_max_size="1KB")
    with pytest.raises(EngineError, match=r"the largest files: data.bin \(2.0 KB\)"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))


def test_the_engine_check_refuses_an_unset_code_dir_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = remote_settings(tmp_path)
    with pytest.raises(EngineError, match="set engine_options.code_dir"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))


def test_the_ssh_agent_is_not_used_unless_asked(tmp_path):
    (tmp_path / "code").mkdir()
    machine = RemoteMachine(host="h")
    assert machine.use_agent is False
    service = TrainingServiceOptions(platform="remote", machines=[machine], code_dir=tmp_path / "code")
    config = ExperimentConfig(engine="training-service", experiment_dir=tmp_path / "exp", engine_options=service)
    with pytest.raises(EngineError, match=r"engine_options.machines\[0\] \(.*@h:22\): set key_file, or use_agent = true"):
        create_engine_for(config).check(FunctionalEvaluator(lambda m: 1.0))

