"""The project's benchmarks, run from the repository root as modules: ``python -m benchmarks.<module>``.

Each prints markdown tables headed by the command that made them (``--help`` for the options):

* ``benchmark``: speed and memory against the dense padded reference and SchNet (QM9 batches, one
  layer up to 1e6 points, FLOP rate, aggregation, ``torch.compile``).
* ``side_by_side``: step times of the original LieConv code and this project (QM9, RotMNIST, springs,
  one layer); ``learning_side_by_side`` (RotMNIST) and ``qm9_learning_side_by_side``: both trained on
  the same data.
* ``rotmnist_epoch_time``, ``mixed_precision`` (QM9 float32 vs bfloat16), ``candidate_graphs``,
  ``equivariance``, ``group_precision``, ``hamiltonian_smoothness``.
* ``compare_revisions`` (step times) and ``host_syncs``: this checkout against another revision's tree.

Shared code: ``harness`` (clocks, worker processes, tables, the machine, imports of the original code
and of other revisions), ``inputs`` (synthetic molecules and point clouds), ``worker`` (the entry of
worker processes), and one module per application or topic the benchmarks above are built from:
``qm9``, ``rotmnist``, ``springs``, ``layer``.
"""
