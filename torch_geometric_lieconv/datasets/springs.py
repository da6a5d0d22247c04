r"""Interacting particle systems (springs, N-body gravity): generators and a cached PyG dataset.

**Spring systems** (Sanchez-Gonzalez et al., 2019; the paper's §6): :math:`n = 6` particles in 2D,
masses :math:`m_i \sim U(0.1, 3.1)`, spring constants :math:`k_i \sim U(0, 5)` with
:math:`K_{ij} = k_i k_j`, :math:`q_0 \sim 0.4\,\mathcal{N}(0, I)`, :math:`p_0 \sim 0.6\,\mathcal{N}(0, I)`,

.. math::
    \mathcal{H} = \sum_i \frac{|p_i|^2}{2 m_i} + \frac{1}{2}\sum_{i, j} K_{ij} |q_i - q_j|^2 ,

where the double sum runs over all ordered pairs, as in the reference code (so each spring
:math:`i < j` enters once with stiffness :math:`K_{ij}`: :math:`V = \sum_{i<j} K_{ij}|q_i - q_j|^2`).

**N-body gravity** (the reference's ``NBodyDynamics``): a star of mass 32 at rest at the origin and
5 planets of mass :math:`U(0.02, 0.2)` on circular-orbit initial conditions at radii near
``linspace(0.5, 4, 5)``, in a random order, :math:`\mathcal{H} = \sum_i |p_i|^2/2m_i - G\sum_{i<j} m_i m_j/|q_i - q_j|`, G = 1.

Both are integrated with RK4 on a grid of ``traj_len`` times spaced ``dt`` (default 500 x 0.01),
with ``substeps`` RK4 steps per grid interval (default 4: the stiffest spring systems reach
:math:`\omega\,dt \approx 0.5`, where one RK4 step per 0.01 loses up to ~1e-2 of the energy; with 4
the worst of 1000 systems loses ~1e-5). Generation is vectorised over all systems.

The reference code differs in details we do not copy: its time grid is
``linspace(0, 500 * 0.01, 500)`` (spacing 5/499), its ``rtol=1e-8`` has no effect with RK4, and it
subtracts the mean momentum over the *batch of systems* (not over particles); here the grid is
``dt * arange(traj_len)`` and momenta are drawn as stated above.
"""
from __future__ import annotations

import abc
import hashlib
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from .._files import atomic_write
from ..dynamics import (
    broadcast_rows,
    hamiltonian_vector_field,
    join_state,
    kinetic_energy,
    per_system_sum,
    rollout,
    split_state,
)
from ..graph import all_pairs_within_graphs
from .safe_load import SafeLoadMixin

SPLITS = ("train", "val", "test")


class ParticleSystem(abc.ABC):
    r"""A family of Hamiltonian particle systems: a sampler of initial conditions and parameters, and :math:`\mathcal{H}`.

    Per-particle parameters are passed as ``params`` ``[N, c]`` with the columns named by
    :attr:`param_keys`; column 0 is always the mass.

    Args:
        num_particles (int, optional): particles per system. (default: :obj:`6`)
        dim (int, optional): space dimension, 2 or 3. (default: :obj:`2`)
    """

    name: str
    param_keys: Tuple[str, ...]

    def __init__(self, num_particles: int = 6, dim: int = 2) -> None:
        if num_particles < 2:
            raise ValueError(f"a particle system needs at least 2 particles, got {num_particles}")
        if dim not in (2, 3):
            raise ValueError(f"particle systems are 2D or 3D, got dim={dim}")
        self.num_particles, self.dim = int(num_particles), int(dim)

    @abc.abstractmethod
    def sample(self, num_systems: int, generator: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
        """Draw ``num_systems`` systems (float64, CPU): ``q0``, ``p0`` ``[B*n, d]`` and ``params`` ``[B*n, c]``.

        Args:
            num_systems (int): :math:`B`, the systems to draw.
            generator (torch.Generator): the random stream.
        """

    @abc.abstractmethod
    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        """Potential energy per system: ``q`` ``[N, ..., d]`` -> ``[B, ...]``."""

    def hamiltonian(self, q: Tensor, p: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        r""":math:`\mathcal{H} = \sum_i |p_i|^2/2m_i + V(q)` per system, ``[B, ...]``."""
        return kinetic_energy(p, params[:, 0], batch, num_systems) + self.potential(q, params, batch, num_systems)

    def vector_field(self, z: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        r""":math:`J\nabla\mathcal{H}` at ``z`` ``[N, 2d]`` (autograd; subclasses may give a closed form).

        Args:
            z (torch.Tensor): states ``[N, 2d]``.
            params (torch.Tensor): per-particle parameters ``[N, c]``, mass first.
            batch (torch.Tensor): the system of each particle ``[N]``.
            num_systems (int): :math:`B`.
        """
        return hamiltonian_vector_field(lambda q, p: self.hamiltonian(q, p, params, batch, num_systems), z)

    def config(self) -> Dict[str, object]:
        """The parameters that define the family (they name the cache file)."""
        return {"system": self.name, "num_particles": self.num_particles, "dim": self.dim}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_particles={self.num_particles}, dim={self.dim})"


class SpringSystem(ParticleSystem):
    r"""Particles joined pairwise by springs of stiffness :math:`K_{ij} = k_i k_j` (rest length 0).

    :math:`V = \frac12\sum_{i,j} k_i k_j |q_i - q_j|^2 = (\sum_i k_i)(\sum_i k_i|q_i|^2) - |\sum_i k_i q_i|^2`,
    computed in the closed form on the right (O(n) per system), with force
    :math:`-\partial V/\partial q_i = -2k_i\big((\sum_j k_j)\, q_i - \sum_j k_j q_j\big)`.
    ``params`` columns: ``(m, k)``.

    Args:
        num_particles (int, optional): particles per system. (default: :obj:`6`)
        dim (int, optional): space dimension, 2 or 3. (default: :obj:`2`)
        mass_range (Tuple[float, float], optional): masses are uniform on this interval. (default: :obj:`(0.1,
            3.1)`)
        k_max (float, optional): spring constants :math:`k_i` are uniform on :math:`[0, k_{max}]`. (default:
            :obj:`5.0`)
        q_scale (float, optional): standard deviation of the initial positions. (default: :obj:`0.4`)
        p_scale (float, optional): standard deviation of the initial momenta. (default: :obj:`0.6`)
    """

    name = "springs"
    param_keys = ("m", "k")

    def __init__(self, num_particles: int = 6, dim: int = 2, mass_range: Tuple[float, float] = (0.1, 3.1),
                 k_max: float = 5.0, q_scale: float = 0.4, p_scale: float = 0.6) -> None:
        super().__init__(num_particles, dim)
        self.mass_range, self.k_max, self.q_scale, self.p_scale = tuple(mass_range), k_max, q_scale, p_scale

    def sample(self, num_systems: int, generator: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
        n, d, kw = num_systems * self.num_particles, self.dim, dict(generator=generator, dtype=torch.float64)
        lo, hi = self.mass_range
        m = lo + (hi - lo) * torch.rand(n, **kw)
        k = self.k_max * torch.rand(n, **kw)
        q0 = self.q_scale * torch.randn(n, d, **kw)
        p0 = self.p_scale * torch.randn(n, d, **kw)
        return q0, p0, torch.stack([m, k], dim=-1)

    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        k = params[:, 1]
        k_total = per_system_sum(k, batch, num_systems)
        kq2 = per_system_sum(broadcast_rows(k, q.dim() - 1) * q.pow(2).sum(-1), batch, num_systems)
        kq = per_system_sum(broadcast_rows(k, q.dim()) * q, batch, num_systems)
        return broadcast_rows(k_total, kq2.dim()) * kq2 - kq.pow(2).sum(-1)

    def vector_field(self, z: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        q, p = split_state(z)
        m, k = params[:, 0:1], params[:, 1:2]
        k_total = per_system_sum(k, batch, num_systems)[batch]
        kq = per_system_sum(k * q, batch, num_systems)[batch]
        return join_state(p / m, -2 * k * (k_total * q - kq))

    def config(self) -> Dict[str, object]:
        return {**super().config(), "mass_range": list(self.mass_range), "k_max": self.k_max,
                "q_scale": self.q_scale, "p_scale": self.p_scale}


class GravitySystem(ParticleSystem):
    r"""A star and planets under Newtonian gravity, :math:`V = -G\sum_{i<j} m_i m_j / |q_i - q_j|` (G = 1).

    Initial conditions as in the reference's N-body data: the star (mass 32) at rest at the origin;
    planet :math:`i` at distance :math:`\rho_i` = ``linspace(0.5, 4, n-1)`` plus a uniform jitter of
    :math:`\pm 0.15\cdot 3.5/(n-1)`, in a uniformly random direction, with the circular-orbit speed
    :math:`\sqrt{G M_\star/\rho_i}` along a random tangent direction (a random sign in 2D);
    planet masses :math:`U(0.02, 0.2)`; bodies in a random order. ``params`` columns: ``(m,)``.

    Args:
        num_particles (int, optional): bodies per system, the star included. (default: :obj:`6`)
        dim (int, optional): space dimension, 2 or 3. (default: :obj:`2`)
        star_mass (float, optional): :math:`M_\star`. (default: :obj:`32.0`)
        planet_mass_range (Tuple[float, float], optional): planet masses are uniform on this interval. (default:
            :obj:`(0.02, 0.2)`)
        distance_range (Tuple[float, float], optional): the planets' orbit radii span this interval. (default:
            :obj:`(0.5, 4.0)`)
        gravity (float, optional): :math:`G`. (default: :obj:`1.0`)
    """

    name = "gravity"
    param_keys = ("m",)

    def __init__(self, num_particles: int = 6, dim: int = 2, star_mass: float = 32.0,
                 planet_mass_range: Tuple[float, float] = (0.02, 0.2),
                 distance_range: Tuple[float, float] = (0.5, 4.0), gravity: float = 1.0) -> None:
        super().__init__(num_particles, dim)
        self.star_mass, self.planet_mass_range = star_mass, tuple(planet_mass_range)
        self.distance_range, self.gravity = tuple(distance_range), gravity

    def sample(self, num_systems: int, generator: torch.Generator) -> Tuple[Tensor, Tensor, Tensor]:
        b, planets, d = num_systems, self.num_particles - 1, self.dim
        kw = dict(generator=generator, dtype=torch.float64)
        lo, hi = self.planet_mass_range
        planet_m = lo + (hi - lo) * torch.rand(b, planets, **kw)
        near, far = self.distance_range
        rho = torch.linspace(near, far, planets, dtype=torch.float64).expand(b, -1)
        rho = rho + 0.3 * (torch.rand(b, planets, **kw) - 0.5) * (far - near) / planets
        direction = torch.randn(b, planets, d, **kw)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        if d == 2:
            sign = torch.randint(0, 2, (b, planets, 1), generator=generator).to(torch.float64) * 2 - 1
            tangent = sign * torch.stack([-direction[..., 1], direction[..., 0]], dim=-1)
        else:  # a uniformly random unit vector orthogonal to the radial direction
            w = torch.randn(b, planets, d, **kw)
            tangent = w - (w * direction).sum(-1, keepdim=True) * direction
            tangent = tangent / tangent.norm(dim=-1, keepdim=True)
        speed = (self.gravity * self.star_mass / rho).sqrt()
        q = torch.cat([torch.zeros(b, 1, d, dtype=torch.float64), rho.unsqueeze(-1) * direction], dim=1)
        m = torch.cat([torch.full((b, 1), self.star_mass, dtype=torch.float64), planet_m], dim=1)
        p = torch.cat([torch.zeros(b, 1, d, dtype=torch.float64), (planet_m * speed).unsqueeze(-1) * tangent], dim=1)
        order = torch.rand(b, self.num_particles, **kw).argsort(dim=1)
        rows = torch.arange(b).unsqueeze(-1)
        q, p, m = q[rows, order], p[rows, order], m[rows, order]
        return q.reshape(-1, d), p.reshape(-1, d), m.reshape(-1, 1)

    def potential(self, q: Tensor, params: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        src, dst = all_pairs_within_graphs(batch)
        keep = src != dst
        src, dst = src[keep], dst[keep]
        m = params[:, 0]
        dist = (q[src] - q[dst]).norm(dim=-1)
        pair = broadcast_rows(m[src] * m[dst], dist.dim()) / dist
        return -0.5 * self.gravity * per_system_sum(pair, batch[dst], num_systems)

    def config(self) -> Dict[str, object]:
        return {**super().config(), "star_mass": self.star_mass, "planet_mass_range": list(self.planet_mass_range),
                "distance_range": list(self.distance_range), "gravity": self.gravity}


SYSTEMS = {"springs": SpringSystem, "gravity": GravitySystem}


def system_from_name(name: Union[str, ParticleSystem], **kwargs) -> ParticleSystem:
    """``"springs"`` or ``"gravity"`` (or an instance, returned as is).

    Args:
        name (str or ParticleSystem): ``"springs"``, ``"gravity"`` or a system.
        **kwargs (optional): arguments of the system's class.
    """
    if isinstance(name, ParticleSystem):
        return name
    if name not in SYSTEMS:
        raise ValueError(f"unknown particle system {name!r}; choose one of {sorted(SYSTEMS)}")
    return SYSTEMS[name](**kwargs)


def time_grid(traj_len: int, dt: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """The sample times ``dt * arange(traj_len)``.

    Args:
        traj_len (int): :math:`T`, the number of samples.
        dt (float): the time between samples.
        dtype (torch.dtype, optional): the times' dtype. (default: :obj:`torch.float64`)
    """
    return dt * torch.arange(traj_len, dtype=dtype)


@torch.no_grad()
def simulate(system: ParticleSystem, z0: Tensor, params: Tensor, batch: Tensor, num_systems: int, t: Tensor,
             substeps: int = 4) -> Tensor:
    r"""Integrate the true dynamics from ``z0`` ``[N, 2d]`` over the grid ``t`` with RK4: ``[N, T, 2d]``.

    Args:
        system (ParticleSystem): the systems' family (its :math:`\mathcal{H}`).
        z0 (torch.Tensor): initial states ``[N, 2d]``.
        params (torch.Tensor): per-particle parameters ``[N, c]``.
        batch (torch.Tensor): the system of each particle ``[N]``.
        num_systems (int): :math:`B`.
        t (torch.Tensor): the sample times ``[T]``.
        substeps (int, optional): RK4 steps per sample interval. (default: :obj:`4`)
    """
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
    step = float(t[1] - t[0]) / substeps if t.numel() > 1 else None
    field = lambda _, z: system.vector_field(z, params, batch, num_systems)  # noqa: E731
    return rollout(field, z0, t, method="rk4", step_size=step)


def generate_systems(system: ParticleSystem, num_systems: int, traj_len: int = 500, dt: float = 0.01,
                     substeps: int = 4, seed: int = 0, chunk: int = 2000) -> Tuple[Tensor, Tensor, Tensor]:
    """Sample and integrate ``num_systems`` systems deterministically from ``seed`` (float64, CPU).

    Returns ``traj`` ``[B*n, T, 2d]``, ``params`` ``[B*n, c]`` and the times ``[T]``. Systems are
    integrated ``chunk`` at a time (one batched state each).

    Args:
        system (ParticleSystem): the systems' family.
        num_systems (int): :math:`B`.
        traj_len (int, optional): samples per trajectory. (default: :obj:`500`)
        dt (float, optional): time between samples. (default: :obj:`0.01`)
        substeps (int, optional): RK4 steps per sample interval. (default: :obj:`4`)
        seed (int, optional): the sampler's seed. (default: :obj:`0`)
        chunk (int, optional): systems integrated together. (default: :obj:`2000`)
    """
    if num_systems < 1 or traj_len < 1 or dt <= 0:
        raise ValueError(f"need num_systems >= 1, traj_len >= 1, dt > 0; got {num_systems}, {traj_len}, {dt}")
    generator = torch.Generator().manual_seed(int(seed))
    q0, p0, params = system.sample(num_systems, generator)
    t = time_grid(traj_len, dt)
    n = system.num_particles
    trajs = []
    for start in range(0, num_systems, chunk):
        stop = min(start + chunk, num_systems)
        rows = slice(start * n, stop * n)
        batch = torch.arange(stop - start).repeat_interleave(n)
        trajs.append(simulate(system, join_state(q0[rows], p0[rows]), params[rows], batch, stop - start, t, substeps))
    return torch.cat(trajs, dim=0), params, t


def _stable_seed(*parts: object) -> int:
    """A 63-bit seed from a description (stable across runs and platforms, unlike ``hash``)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def system_params(data: Data, keys: Sequence[str]) -> Tensor:
    """The per-particle parameters ``[N, c]`` of a ``Data``/``Batch`` (columns ``keys``, mass first).

    Args:
        data (torch_geometric.data.Data): an item or a batch of :class:`ParticleDynamics`.
        keys (Sequence[str]): the parameter names, mass first (:attr:`ParticleSystem.param_keys`).
    """
    return torch.stack([data[key] for key in keys], dim=-1)


class ParticleDynamics(SafeLoadMixin, InMemoryDataset):
    r"""Trajectories of particle systems as a PyG dataset, generated once and cached under ``root``.

    Each item is a ``Data`` for one system with ``n`` particles (nodes):

    * ``q``, ``p`` ``[n, d]``: positions and momenta at the start of the item's trajectory,
    * ``m`` ``[n]`` masses (and ``k`` ``[n]`` spring constants for springs),
    * ``traj`` ``[n, T, 2d]``: the target states (``traj[:, 0] = [q, p]``),
    * ``t`` ``[1, T]``: their times.

    With ``chunk_len`` set, every system is cut to one window of ``chunk_len`` steps (the training
    examples of the paper): the trajectory is split into ``traj_len // chunk_len`` aligned windows and
    one is drawn per system, once, from ``seed`` -- the same choice every time the dataset is built.

    The cache file is ``root/processed/<system>_<split>_<digest>.pt`` where the digest covers every
    generation parameter (a sibling ``.json`` lists them), so different settings never collide.
    ``split`` only changes the random stream (``train``, ``val``, ``test`` are independent draws).

    Args:
        root (str): cache folder.
        system (str or ParticleSystem, optional): ``"springs"``, ``"gravity"`` or a :class:`ParticleSystem`.
            (default: :obj:`'springs'`)
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``. (default: :obj:`'train'`)
        num_systems (int, optional): number of systems. (default: :obj:`100`)
        traj_len (int, optional): samples per trajectory. (default: :obj:`500`)
        dt (float, optional): time between samples. (default: :obj:`0.01`)
        substeps (int, optional): RK4 steps per ``dt``. (default: :obj:`4`)
        seed (int, optional): base seed. (default: :obj:`0`)
        chunk_len (int, optional): window length for training items (``None``: whole trajectories).
            (default: :obj:`None`)
        transform (callable, optional): a PyG transform applied to each item on access.
            (default: :obj:`None`)
        log (bool, optional): print PyG's processing messages. (default: :obj:`False`)
        force_reload (bool, optional): generate the systems again. (default: :obj:`False`)
    """

    def __init__(self, root: str, system: Union[str, ParticleSystem] = "springs", split: str = "train",
                 num_systems: int = 100, traj_len: int = 500, dt: float = 0.01, substeps: int = 4, seed: int = 0,
                 chunk_len: Optional[int] = None, transform=None, log: bool = False,
                 force_reload: bool = False) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if chunk_len is not None and not 1 <= chunk_len <= traj_len:
            raise ValueError(f"chunk_len must lie in [1, traj_len={traj_len}], got {chunk_len}")
        self.system = system_from_name(system)
        self.split, self.chunk_len = split, chunk_len
        self.generation = {**self.system.config(), "split": split, "num_systems": int(num_systems),
                           "traj_len": int(traj_len), "dt": float(dt), "substeps": int(substeps), "seed": int(seed)}
        digest = hashlib.sha256(json.dumps(self.generation, sort_keys=True).encode()).hexdigest()[:12]
        self._file_stem = f"{self.system.name}_{split}_{digest}"
        super().__init__(root, transform, log=log, force_reload=force_reload)
        self.load(self.processed_paths[0])
        self.chunk_starts = self._draw_chunks() if chunk_len is not None else None

    @property
    def raw_file_names(self) -> List[str]:
        return []

    @property
    def processed_file_names(self) -> List[str]:
        return [f"{self._file_stem}.pt"]

    @property
    def param_keys(self) -> Tuple[str, ...]:
        return self.system.param_keys

    @property
    def dt(self) -> float:
        return self.generation["dt"]

    def process(self) -> None:
        g = self.generation
        seed = _stable_seed(self.system.name, g["split"], g["seed"])
        traj, params, t = generate_systems(self.system, g["num_systems"], g["traj_len"], g["dt"], g["substeps"], seed)
        n = self.system.num_particles
        data_list = []
        for i in range(g["num_systems"]):
            rows = slice(i * n, (i + 1) * n)
            q, p = split_state(traj[rows, 0])
            fields = {key: params[rows, c] for c, key in enumerate(self.system.param_keys)}
            data_list.append(Data(q=q, p=p, traj=traj[rows], t=t.unsqueeze(0), num_nodes=n, **fields))
        # PyG's save() writes straight to the final path: a crash there would leave a truncated cache
        data, slices = self.collate(data_list)
        atomic_write(self.processed_paths[0], lambda f: torch.save((data.to_dict(), slices, data.__class__), f))
        atomic_write(osp.join(self.processed_dir, f"{self._file_stem}.json"),
                     lambda f: json.dump(self.generation, f, indent=2, sort_keys=True), binary=False)

    def _draw_chunks(self) -> Tensor:
        g = self.generation
        generator = torch.Generator().manual_seed(_stable_seed("chunks", self.system.name, g["split"], g["seed"]))
        num_chunks = g["traj_len"] // self.chunk_len
        return torch.randint(0, num_chunks, (g["num_systems"],), generator=generator) * self.chunk_len

    def get(self, idx: int) -> Data:
        data = super().get(idx)
        if self.chunk_len is None:
            return data
        start = int(self.chunk_starts[idx])
        data.traj = data.traj[:, start:start + self.chunk_len]
        data.t = data.t[:, start:start + self.chunk_len]
        data.q, data.p = split_state(data.traj[:, 0])
        return data

    def __repr__(self) -> str:
        chunk = f", chunk_len={self.chunk_len}" if self.chunk_len is not None else ""
        return f"{type(self).__name__}({self.system.name}, {self.split}, {len(self)} systems{chunk})"


class SpringDynamics(ParticleDynamics):
    """:class:`ParticleDynamics` of the 6-particle 2D spring systems (the paper's §6 data).

    Args:
        root (str): cache folder.
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``. (default: :obj:`"train"`)
        num_systems (int, optional): number of systems. (default: :obj:`100`)
        **kwargs (optional): further :class:`ParticleDynamics` arguments.
    """

    def __init__(self, root: str, split: str = "train", num_systems: int = 100, **kwargs) -> None:
        super().__init__(root, SpringSystem(), split, num_systems, **kwargs)


class NBodyDynamics(ParticleDynamics):
    """:class:`ParticleDynamics` of star-and-planets gravity (200 steps of 0.01 by default, as the reference).

    Args:
        root (str): cache folder.
        split (str, optional): ``"train"``, ``"val"`` or ``"test"``. (default: :obj:`"train"`)
        num_systems (int, optional): number of systems. (default: :obj:`100`)
        dim (int, optional): space dimension. (default: :obj:`2`)
        traj_len (int, optional): samples per trajectory. (default: :obj:`200`)
        **kwargs (optional): further :class:`ParticleDynamics` arguments.
    """

    def __init__(self, root: str, split: str = "train", num_systems: int = 100, dim: int = 2,
                 traj_len: int = 200, **kwargs) -> None:
        super().__init__(root, GravitySystem(dim=dim), split, num_systems, traj_len=traj_len, **kwargs)
