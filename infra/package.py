"""``make package``: the deployable CloudFormation (SAM) template and code, in ``build/<stage>/``.

Two ``chalice package`` runs: the first shows what chalice generates for the app (its
functions, their SQS event sources and timeouts), the merge template is rendered from that and
from ``backends/queue_setup.py``, and the second run merges it (``--merge-template``). The
deployment package is built once; the second run reuses chalice's cached zip.

The result is ``build/<stage>/sam.json`` + ``deployment.zip`` (deploy them with
``aws cloudformation package`` / ``deploy``, see docs/DEPLOY.md) and the
``merge-template.json`` that was merged.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from chalicelib import config
from infra import render

# What the functions are made of; copied when packaging without dependencies.
PROJECT_FILES = ("app.py", "chalicelib", "infra", "vendor", ".chalice/config.json")


class PackagingError(RuntimeError):
    pass


def chalice_env() -> dict[str, str]:
    """The environment chalice imports ``app.py`` in: the shell's, minus every setting.

    Chalice exports the stage's ``environment_variables`` itself before importing the app, so
    the decorators (queue names, batch size) see what the deployed functions will see.
    """
    names = config.environment_names() | {"LOCALSTACK_HOST"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env["AWS_DEFAULT_REGION"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return env


def run_chalice(project_dir: Path, *args: str) -> None:
    command = [sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())"]
    result = subprocess.run(
        [*command, "--project-dir", str(project_dir), *args],
        env=chalice_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(
            f"chalice {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


def check_policy(stage: str, project_dir: Path) -> None:
    """Each function's policy file must be what ``infra.render`` renders for it."""
    try:
        files = render.policy_files(stage, project_dir)
    except ValueError as e:
        raise PackagingError(str(e)) from None
    for path, expected in files.items():
        if not path.exists() or path.read_text() != expected:
            raise PackagingError(f"{path} is stale: run `python -m infra policy --stage {stage}`")


def copy_without_dependencies(project_dir: Path, target: Path) -> Path:
    """The project's code with an empty requirements.txt: same template, no wheel downloads."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "venv")
    for name in PROJECT_FILES:
        source = project_dir / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / "requirements.txt").write_text("")
    return target


def package(
    stage: str = "dev",
    out_dir: Path | None = None,
    project_dir: Path = render.PROJECT_DIR,
    with_dependencies: bool = True,
) -> Path:
    """Package ``stage`` into ``out_dir`` (default ``build/<stage>``); returns the template."""
    project_dir = Path(project_dir).resolve()
    out_dir = Path(out_dir or project_dir / "build" / stage).resolve()
    check_policy(stage, project_dir)
    with tempfile.TemporaryDirectory(prefix="order-engine-package-") as tmp:
        source = project_dir
        if not with_dependencies:
            source = copy_without_dependencies(project_dir, Path(tmp) / "project")
        base_dir = Path(tmp) / "base"
        run_chalice(source, "package", "--stage", stage, str(base_dir))
        base = json.loads((base_dir / "sam.json").read_text())

        merge = render.merge_template(
            base, render.stage_settings(stage, source), render.function_specs(stage, source)
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        merge_path = out_dir / "merge-template.json"
        merge_path.write_text(json.dumps(merge, indent=2) + "\n")
        run_chalice(
            source, "package", "--stage", stage, "--merge-template", str(merge_path), str(out_dir)
        )
    return out_dir / "sam.json"
