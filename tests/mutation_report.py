"""Print the score of the last ``mutmut run`` and its surviving mutants (``make mutate``)."""

import json
import subprocess
import sys
from pathlib import Path

STATS = Path("mutants/mutmut-cicd-stats.json")


def main() -> None:
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([mutmut, "export-cicd-stats"], check=True, capture_output=True)
    stats = json.loads(STATS.read_text())
    # not counting mutants a run that was cut short has not checked yet
    tested = sum(stats[k] for k in ("killed", "timeout", "survived", "no_tests", "suspicious"))
    caught = stats["killed"] + stats["timeout"]
    print(subprocess.run([mutmut, "results"], capture_output=True, text=True).stdout, end="")
    print(
        f"mutation score {100 * caught / tested:.1f}%: {caught} of {tested} mutants caught"
        f" ({stats['killed']} failed a test, {stats['timeout']} timed out);"
        f" {stats['survived']} survived, {stats['no_tests']} reached by no unit test"
    )
    print("see one: .venv/bin/mutmut show <name>   (README, 'Mutation testing')")


if __name__ == "__main__":
    main()
