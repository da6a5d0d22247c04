#!/usr/bin/env bash
# Quick QM9 run on a CPU: a small T(3) LieConv on a 5,000-molecule training subset, then the test table.
#   usage: examples/train_qm9_quick.sh QM9_ROOT [TARGET] [OUT]
# QM9_ROOT is a torch_geometric.datasets.QM9 root (downloaded there when empty and online).
# The paper's runs drop "--preset quick" (500 epochs, k=1536; a GPU and a day per target):
#   lieconv train qm9 --root QM9_ROOT --target homo --group T3
#   lieconv train qm9 --root QM9_ROOT --target homo --group SE3
# Several GPUs: torchrun --nproc_per_node 4 -m torch_geometric_lieconv.cli train qm9 --root QM9_ROOT ...
set -euo pipefail
root="${1:?usage: $0 QM9_ROOT [TARGET] [OUT]}"
target="${2:-homo}"
out="${3:-runs/qm9-${target}-T3-quick}"
lieconv train qm9 --root "$root" --target "$target" --group T3 --preset quick --out "$out"
lieconv evaluate qm9 --run "$out" --root "$root"
