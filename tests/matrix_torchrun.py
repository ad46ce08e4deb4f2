"""Run under torchrun by tests/test_compatibility.py: several training runs in one process group.

    torchrun --nproc_per_node 2 tests/matrix_torchrun.py JOBS.json

JOBS.json maps a job name to train.py's arguments. The jobs run one after another in the same
group (one launch, one rendezvous for all of them); each rank writes
``results_rank<N>.json`` beside JOBS.json: job -> "ok" or its error line.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train  # noqa: E402
from engine import Distributed  # noqa: E402
from options import parse_options  # noqa: E402
from util.errors import UserError  # noqa: E402


def main(spec: Path) -> int:
    jobs = json.loads(spec.read_text())
    dist = Distributed.from_environment(120.0, use_gpus=False)
    results = {}
    try:
        for name, argv in jobs.items():
            try:
                opt = parse_options(argv, is_train=True)
                opt.argv = argv
                with train.claimed_run_folder(opt, dist):
                    code = train.run(opt, dist)
                results[name] = "ok" if code == 0 else f"exit code {code}"
            except UserError as e:
                results[name] = f"error: {e}"
            dist.barrier()
    finally:
        (spec.parent / f"results_rank{dist.rank}.json").write_text(json.dumps(results))
        dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
