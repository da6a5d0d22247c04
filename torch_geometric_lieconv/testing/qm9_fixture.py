"""Write a tiny QM9 root in PyG's raw formats (both the pre-processed ``qm9_v3.pt`` read without RDKit and
the ``gdb9.sdf`` / ``gdb9.sdf.csv`` / ``uncharacterized.txt`` files read with RDKit).

Molecules are generated: a chain of 1-4 heavy atoms (C, N, O, F) with bond length ~1.5 A, hydrogens
filling the valences at 1.09 A. Their 19 raw targets are given in QM9's own units (the CSV's:
Hartree for energies, kcal/mol for the atomization energies) and are simple functions of the
composition plus noise, so a model can learn them. :data:`RAW_COLUMNS` names the CSV columns.
"""
from __future__ import annotations

import os
from typing import Dict, List

import torch

#: the columns of QM9's gdb9.sdf.csv after mol_id, in order
RAW_COLUMNS = ["A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "u0", "u298", "h298", "g298",
               "cv", "u0_atom", "u298_atom", "h298_atom", "g298_atom"]
#: PyG's unit conversion of those columns after moving A, B, C to the end (as in PyG's QM9.process);
#: restated here from the physical constants: 1 Hartree = 27.211386246 eV, 1 kcal/mol = 0.04336414 eV
#: 1 Hartree in eV (CODATA 2018)
HARTREE_EV = 27.211386246
_KCAL_EV = 0.04336414
_PYG_FACTORS = [1, 1, HARTREE_EV, HARTREE_EV, HARTREE_EV, 1, HARTREE_EV, HARTREE_EV, HARTREE_EV, HARTREE_EV,
                HARTREE_EV, 1, _KCAL_EV, _KCAL_EV, _KCAL_EV, _KCAL_EV, 1, 1, 1]

_VALENCE = {6: 4, 7: 3, 8: 2, 9: 1}
_SYMBOL = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
_TYPE = {1: 0, 6: 1, 7: 2, 8: 3, 9: 4}


def _unit(g: torch.Generator) -> torch.Tensor:
    v = torch.randn(3, generator=g, dtype=torch.float64)
    return v / v.norm()


def _place(anchor: torch.Tensor, length: float, others: List[torch.Tensor], g: torch.Generator) -> torch.Tensor:
    for _ in range(200):
        p = anchor + length * _unit(g)
        if all(float((p - o).norm()) > 1.25 for o in others):
            return p
    raise RuntimeError("could not place an atom")


def make_molecule(g: torch.Generator) -> Dict:
    """A generated molecule: ``z``, ``pos``, ``bonds`` and its ``raw`` targets in QM9's CSV units.

    Args:
        g (torch.Generator): the random stream.
    """
    heavy_count = int(torch.randint(1, 5, (1,), generator=g))
    choices = torch.tensor([6, 6, 6, 7, 8, 9])
    heavy = [6] + [int(choices[int(torch.randint(0, 6, (1,), generator=g))]) for _ in range(heavy_count - 1)]
    if heavy.count(9) and heavy[-1] != 9:  # F is terminal: put it last, at most one
        heavy = [z for z in heavy if z != 9] + [9]
    z: List[int] = []
    pos: List[torch.Tensor] = []
    bonds: List[tuple] = []
    for i, atom in enumerate(heavy):
        z.append(atom)
        pos.append(torch.zeros(3, dtype=torch.float64) if i == 0 else _place(pos[i - 1], 1.5, pos[:-1], g))
        if i:
            bonds.append((i - 1, i))
    for i, atom in enumerate(heavy):
        free = _VALENCE[atom] - sum(1 for a, b in bonds if i in (a, b))
        for _ in range(max(free, 0)):
            z.append(1)
            pos.append(_place(pos[i], 1.09, [p for j, p in enumerate(pos) if j != i], g))
            bonds.append((i, len(z) - 1))
    counts = {s: z.count(s) for s in (1, 6, 7, 8, 9)}
    noise = lambda scale: float(torch.randn((), generator=g, dtype=torch.float64)) * scale  # noqa: E731
    n = len(z)
    raw = {
        "A": 100.0 / n + noise(1), "B": 50.0 / n + noise(1), "C": 30.0 / n + noise(1),
        "mu": 0.5 + 0.8 * counts[8] + 0.6 * counts[7] + 1.1 * counts[9] + abs(noise(0.05)),
        "alpha": 6.0 + 7.5 * counts[6] + 5.0 * (counts[7] + counts[8]) + noise(0.2),
        "homo": -0.24 - 0.012 * counts[8] - 0.006 * counts[7] + 0.003 * counts[6] + noise(0.002),
        "lumo": 0.05 - 0.01 * counts[6] + noise(0.003),
        "r2": 20.0 * n + noise(2),
        "zpve": 0.01 * counts[1] + 0.005 * (n - counts[1]) + noise(1e-4),
        "cv": 3.0 + 2.2 * n + noise(0.1),
    }
    raw["gap"] = raw["lumo"] - raw["homo"]
    raw["u0"] = (-0.5 * counts[1] - 37.8 * counts[6] - 54.5 * counts[7] - 75.0 * counts[8] - 99.7 * counts[9]
                 + noise(0.01))
    raw["u298"], raw["h298"], raw["g298"] = raw["u0"] + 0.004, raw["u0"] + 0.005, raw["u0"] - 0.03
    raw["u0_atom"] = -90.0 * len(bonds) + noise(3)
    u0_atom = raw["u0_atom"]
    raw["u298_atom"], raw["h298_atom"], raw["g298_atom"] = u0_atom - 1.5, u0_atom - 2.0, u0_atom + 9
    return {"z": z, "pos": torch.stack(pos).to(torch.float32), "bonds": bonds, "raw": raw}


def pyg_targets(raw: Dict[str, float]) -> torch.Tensor:
    """The ``[1, 19]`` row PyG stores for these raw values (what ``qm9_v3.pt`` holds).

    Args:
        raw (Dict[str, float]): a molecule's targets by CSV column (:data:`RAW_COLUMNS`).
    """
    values = [raw[c] for c in RAW_COLUMNS]
    values = values[3:] + values[:3]
    return torch.tensor([[v * f for v, f in zip(values, _PYG_FACTORS)]], dtype=torch.float32)


def _pt_record(i: int, mol: Dict) -> Dict:
    z = torch.tensor(mol["z"], dtype=torch.long)
    n = len(z)
    rows, cols = [], []
    for a, b in mol["bonds"]:
        rows += [a, b]
        cols += [b, a]
    edge_index = torch.tensor([rows, cols], dtype=torch.long)
    perm = (edge_index[0] * n + edge_index[1]).argsort()
    edge_index = edge_index[:, perm]
    edge_attr = torch.zeros(edge_index.shape[1], 4)
    edge_attr[:, 0] = 1.0  # single bonds
    x = torch.zeros(n, 11)
    x[torch.arange(n), torch.tensor([_TYPE[int(a)] for a in z])] = 1.0
    x[:, 5] = z.float()
    x[:, 8] = (z != 1).float()  # sp3
    hs = torch.zeros(n)
    for a, b in mol["bonds"]:
        if mol["z"][b] == 1:
            hs[a] += 1
    x[:, 10] = hs
    return {"x": x, "edge_index": edge_index, "edge_attr": edge_attr, "y": pyg_targets(mol["raw"]),
            "pos": mol["pos"], "z": z, "smiles": "".join(_SYMBOL[a] for a in mol["z"] if a != 1),
            "name": f"gdb_{i + 1}", "idx": torch.tensor([i])}


def _sdf_block(i: int, mol: Dict) -> str:
    lines = [f"gdb_{i + 1}", "     fixture          3D", "",
             f"{len(mol['z']):3d}{len(mol['bonds']):3d}  0  0  0  0  0  0  0  0999 V2000"]
    for a, p in zip(mol["z"], mol["pos"].tolist()):
        lines.append(f"{p[0]:10.4f}{p[1]:10.4f}{p[2]:10.4f} {_SYMBOL[a]:<3} 0  0  0  0  0  0  0  0  0  0  0  0")
    for a, b in mol["bonds"]:
        lines.append(f"{a + 1:3d}{b + 1:3d}  1  0")
    lines += ["M  END", "$$$$"]
    return "\n".join(lines) + "\n"


def write_qm9_root(root: str, num_molecules: int = 16, seed: int = 0) -> List[Dict]:
    """Write ``root/raw`` with ``num_molecules`` generated molecules in both PyG raw formats.

    Returns the molecules (``z``, ``pos``, ``bonds``, ``raw`` targets in QM9's CSV units).

    Args:
        root (str): the QM9 root to create (``root/raw``).
        num_molecules (int, optional): how many. (default: :obj:`16`)
        seed (int, optional): the generator's seed. (default: :obj:`0`)
    """
    g = torch.Generator().manual_seed(seed)
    molecules = [make_molecule(g) for _ in range(num_molecules)]
    raw_dir = os.path.join(root, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    torch.save([_pt_record(i, m) for i, m in enumerate(molecules)], os.path.join(raw_dir, "qm9_v3.pt"))
    with open(os.path.join(raw_dir, "gdb9.sdf"), "w") as f:
        f.write("".join(_sdf_block(i, m) for i, m in enumerate(molecules)))
    with open(os.path.join(raw_dir, "gdb9.sdf.csv"), "w") as f:
        f.write("mol_id," + ",".join(RAW_COLUMNS) + "\n")
        for i, m in enumerate(molecules):
            f.write(f"gdb_{i + 1}," + ",".join(repr(float(m["raw"][c])) for c in RAW_COLUMNS) + "\n")
    with open(os.path.join(raw_dir, "uncharacterized.txt"), "w") as f:  # PyG reads lines [9:-2]: none here
        f.write("\n".join(["# fixture: no uncharacterized molecules"] * 9 + ["# end"]) + "\n")
    return molecules


if __name__ == "__main__":  # pragma: no cover
    import sys

    write_qm9_root(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 16)
    print(f"wrote {sys.argv[1]}")
