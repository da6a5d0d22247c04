r"""The abstract Lie group interface of LieConv.

A group :math:`G` acting on :math:`\mathcal{X} = \mathbb{R}^d` is described by four maps; everything
else LieConv needs is derived from them here:

* :meth:`LieGroup.exp`: Lie algebra coordinates :math:`a \in \mathbb{R}^{\text{lie\_dim}}` to a matrix
  :math:`u = \exp(\sum_k a_k A_k)`.
* :meth:`LieGroup.log`: the inverse, matrix to coordinates.
* :meth:`LieGroup.lift`: Algorithm 1 of the paper; every point :math:`x` becomes ``num_samples`` group
  elements :math:`u` with :math:`u\,o_q = x` (coordinates :math:`a = \log u`) and the embedding
  :math:`q` of its orbit; the elements are drawn from the Haar measure of the stabilizer.
* :meth:`LieGroup.distance`: an invariant distance on pair embeddings
  :math:`(\log(v^{-1}u), q_u, q_v)`.
"""
from __future__ import annotations

import abc
from typing import Optional, Tuple

import torch
from torch import Tensor


class LieGroup(abc.ABC):
    r"""Base class of the groups LieConv is equivariant to.

    Subclasses set ``space_dim`` (the :math:`d` of the points acted on), ``lie_dim`` and ``q_dim`` and
    implement :meth:`exp`, :meth:`log`, :meth:`lift` and :meth:`distance`.

    Args:
        alpha (float, optional): weight of the group part against the orbit part in the distance
            :math:`d = \alpha\,\|\log(v^{-1}u)\| + (1-\alpha)\,\|q_u - q_v\|`.
    """

    space_dim: int
    lie_dim: int
    q_dim: int
    #: the default weight of the group part of the distance (the reference implementation's value)
    default_alpha: float = 0.2
    #: ``m`` if the stabilizer is a rotation group sampled through ``[.., m, m]`` frames, else ``None``
    frame_dim: Optional[int] = None
    #: whether the lift is undefined at the origin (polar-type coordinates)
    undefined_at_origin: bool = False
    #: dtype in which pair logs are computed for inputs of lower precision
    pair_dtype: Optional[torch.dtype] = torch.float64

    def __init__(self, alpha: Optional[float] = None) -> None:
        self.alpha = float(self.default_alpha if alpha is None else alpha)
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")

    # ------------------------------------------------------------------ the four maps
    @abc.abstractmethod
    def exp(self, a: Tensor) -> Tensor:
        """Lie algebra coordinates ``[..., lie_dim]`` to group matrices ``[..., n, n]``."""

    @abc.abstractmethod
    def log(self, g: Tensor) -> Tensor:
        """Group matrices ``[..., n, n]`` to Lie algebra coordinates ``[..., lie_dim]``."""

    @abc.abstractmethod
    def lift(
        self,
        pos: Tensor,
        num_samples: int = 1,
        frames: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[Tensor, Tensor]:
        r"""Lift points ``pos`` ``[N, d]`` to ``(a, q)`` of shapes ``[N, K, lie_dim]``, ``[N, K, q_dim]``.

        ``frames`` (``[N, K, m, m]`` rotations, for groups with ``frame_dim = m``) fixes the stabilizer
        samples; rotating them with the input (``R @ frames``) makes the lift exactly equivariant.
        Otherwise they are drawn with ``generator``.
        """

    def distance(self, abq: Tensor) -> Tensor:
        r""":math:`\alpha\,\|\log(v^{-1}u)\| + (1-\alpha)\,\|q_u - q_v\|` of pair embeddings ``[..., D]``."""
        ab, q_u, q_v = self.split_pair_embedding(abq)
        return self.alpha * ab.norm(dim=-1) + (1 - self.alpha) * self.orbit_distance(q_u, q_v)

    # ------------------------------------------------------------------ derived
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def embedding_dim(self) -> int:
        """Size of the pair embedding ``[log(v^-1 u), q_u, q_v]``: ``lie_dim + 2 * q_dim``."""
        return self.lie_dim + 2 * self.q_dim

    def identity(self, *shape: int, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        return self.exp(torch.zeros(*shape, self.lie_dim, dtype=dtype, device=device))

    def inv(self, g: Tensor) -> Tensor:
        r""":math:`g^{-1} = \exp(-\log g)`."""
        return self.exp(-self.log(g))

    def orbit_distance(self, q_u: Tensor, q_v: Tensor) -> Tensor:
        """Euclidean distance between orbit embeddings (0 when ``q_dim == 0``)."""
        return (q_u - q_v).norm(dim=-1)

    def split_pair_embedding(self, abq: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Split ``[..., lie_dim + 2 q_dim]`` into ``(log(v^-1 u), q_u, q_v)``.

        Args:
            abq (torch.Tensor): pair embeddings ``[..., embedding_dim]``.
        """
        l, m = self.lie_dim, self.q_dim
        return abq[..., :l], abq[..., l : l + m], abq[..., l + m : l + 2 * m]

    def pair_work_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype of pair computations for inputs of ``dtype``: :attr:`pair_dtype` when that is more
        precise, else ``dtype``.

        Args:
            dtype (torch.dtype): the inputs' dtype.
        """
        if self.pair_dtype is not None and _less_precise(dtype, self.pair_dtype):
            return self.pair_dtype
        return dtype

    def pair_log(self, a_u: Tensor, a_v: Tensor) -> Tensor:
        r""":math:`\log(v^{-1} u)` for element-wise paired coordinates ``a_u``, ``a_v`` ``[E, lie_dim]``.

        Computed through matrices as :math:`\log(\exp(-a_v)\exp(a_u))`, in :attr:`pair_dtype` when the
        inputs are less precise. Groups with a closed form (translations) override this.
        """
        out_dtype = a_u.dtype
        work = self.pair_work_dtype(out_dtype)
        a_u, a_v = a_u.to(work), a_v.to(work)
        return self.log(self.exp(-a_v) @ self.exp(a_u)).to(out_dtype)

    def pair_embedding(self, a: Tensor, q: Tensor, edge_index: Tensor) -> Tensor:
        r"""Pair embeddings for the edges ``edge_index = [source j, target i]``, ``[E, embedding_dim]``.

        Row ``e`` is :math:`[\log(v_j^{-1} u_i), q_i, q_j]`, so the work and memory are O(E). A group
        whose :meth:`pair_log` is the matrix path forms :math:`\exp(a)` and :math:`\exp(-a)` once per
        point (in :attr:`pair_dtype`) and per edge only the product and its log (the same values as
        :meth:`pair_log`, two matrix exponentials per edge fewer); a group with its own
        :meth:`pair_log` gets it per edge.

        Args:
            a (torch.Tensor): lifted elements :math:`\log u` ``[M, lie_dim]``.
            q (torch.Tensor): their orbits ``[M, q_dim]``.
            edge_index (torch.Tensor): pairs ``[2, E]`` (source, target).
        """
        src, dst = edge_index[0], edge_index[1]
        if type(self).pair_log is LieGroup.pair_log:
            work = self.pair_work_dtype(a.dtype)
            a_work = a.to(work)
            ab = self.log(self.exp(-a_work)[src] @ self.exp(a_work)[dst]).to(a.dtype)
        else:
            ab = self.pair_log(a[dst], a[src])
        return torch.cat([ab, q[dst], q[src]], dim=-1)

    def act_on_lift(self, g: Tensor, a: Tensor) -> Tensor:
        r"""Left action on lifted elements: :math:`\log(g \exp(a))` (``g`` broadcast against ``a``).

        Args:
            g (torch.Tensor): group elements (matrices).
            a (torch.Tensor): lifted elements :math:`\log u` ``[..., lie_dim]``.
        """
        return self.log(g @ self.exp(a))

    def act(self, g: Tensor, pos: Tensor) -> Tensor:
        """Action of matrices ``g`` ``[n, n]`` or ``[N, n, n]`` on points ``pos`` ``[N, d]``.

        Linear representations (``n == d``) act as ``g x``, affine ones (``n == d + 1``) as
        ``R x + t``. Groups with another representation override this.
        """
        d, n = pos.shape[-1], g.shape[-1]
        if n == d:
            return (g @ pos.unsqueeze(-1)).squeeze(-1)
        if n == d + 1:
            return (g[..., :d, :d] @ pos.unsqueeze(-1)).squeeze(-1) + g[..., :d, d]
        raise NotImplementedError(f"{self.name}: define act() for {n}x{n} matrices acting on R^{d}")

    def rotate_frames(self, g: Tensor, frames: Tensor) -> Tensor:
        """How stabilizer frames move when the input is transformed by ``g``: ``R(g) @ frames``.

        Args:
            g (torch.Tensor): a group element (matrix).
            frames (torch.Tensor): stabilizer frames ``[N, K, m, m]``.
        """
        m = frames.shape[-1]
        return g[..., :m, :m] @ frames

    def sample(
        self, num: int, *, scale: float = 1.0, dtype=torch.float32, device=None, generator=None
    ) -> Tensor:
        """Random group elements ``exp(scale * N(0, I))``, ``[num, n, n]``.

        Args:
            num (int): the number of elements.
            scale (float, optional): the standard deviation of their Lie algebra coordinates. (default:
                :obj:`1.0`)
            dtype (torch.dtype, optional): their dtype. (default: :obj:`torch.float32`)
            device (torch.device, optional): their device. (default: :obj:`None`)
            generator (torch.Generator, optional): the random stream. (default: :obj:`None`)
        """
        a = torch.randn(num, self.lie_dim, dtype=dtype, device=device, generator=generator) * scale
        return self.exp(a)

    def continuous_kernel_input(self, abq: Tensor) -> Tensor:
        r"""Pair features without branch cuts: the matrix :math:`v^{-1}u = \exp(\log(v^{-1}u))` (its
        rows above the homogeneous one) and the orbits, ``[..., kernel_input_dim(True)]``.

        :math:`\log(v^{-1}u)` of a group with a compact rotation part jumps where the relative rotation
        crosses angle :math:`\pi` (the angle flips sign, SE(2)'s translation part with it); the matrix
        is the same on both sides, so a kernel of it is continuous (and so is a learned potential).
        Computed in at least float32, outside autocast (group math).

        Args:
            abq (torch.Tensor): pair embeddings ``[..., embedding_dim]``.
        """
        ab, q_u, q_v = self.split_pair_embedding(abq)
        work = torch.promote_types(abq.dtype, torch.float32)
        with torch.autocast(abq.device.type, enabled=False):
            g = self.exp(ab.to(work))
        if g.shape[-1] == self.space_dim + 1:  # affine: drop the constant last row
            g = g[..., :-1, :]
        return torch.cat([g.flatten(-2).to(abq.dtype), q_u, q_v], dim=-1)

    def kernel_input_dim(self, continuous: bool = False) -> int:
        """Width of the kernel MLP's input: :attr:`embedding_dim`, or that of :meth:`continuous_kernel_input`.

        Args:
            continuous (bool, optional): the width of :meth:`continuous_kernel_input`. (default: :obj:`False`)
        """
        if not continuous:
            return self.embedding_dim
        return self.continuous_kernel_input(torch.zeros(1, self.embedding_dim, dtype=torch.float64)).shape[-1]

    def search_embedding(self, a: Tensor, q: Tensor, pos: Tensor) -> Optional[Tensor]:
        r"""A search embedding :math:`\phi(u, q) \in \mathbb{R}^m` of lifted elements, ``[M, m]``.

        Candidate pairs of a ball :math:`d < r` are the pairs with
        :math:`\|\phi_i - \phi_j\| < \rho(r)` (:meth:`search_radius`), found by
        :func:`torch_cluster.radius` in :math:`\mathbb{R}^m`. A subclass proves
        :math:`d(\text{abq}_{ij}) < r \Rightarrow \|\phi_i - \phi_j\| < \rho(r)` in its docstring;
        the built-in groups make :math:`\phi` 1-Lipschitz (:math:`\rho(r) = r`) by weighting
        its parts with :math:`\alpha` and :math:`1 - \alpha` as the distance does. ``a``, ``q``:
        the lifted elements' coordinates; ``pos``: their points :math:`x = u\,o_q`. ``None`` (the
        default): no embedding is known; candidates then come from :meth:`euclidean_radius`.
        """
        return None

    def search_radius(self, r: float) -> Optional[float]:
        r""":math:`\rho(r)` of :meth:`search_embedding` (``None``: no bound at this radius, all pairs)."""
        return float(r)

    def euclidean_radius(self, r: float, max_norm: float) -> Optional[float]:
        r"""A bound :math:`\rho` with :math:`d(\text{abq}_{ij}) < r \Rightarrow \|x_i - x_j\| < \rho`.

        ``max_norm`` bounds :math:`\|x\|` over the points. ``None`` means no bound is known and
        candidate neighbourhoods fall back to all pairs within each graph.
        """
        return None

    def check_pos(self, pos: Tensor) -> None:
        """Raise a clear ``ValueError`` for input this group cannot lift (one host sync).

        Args:
            pos (torch.Tensor): points ``[N, space_dim]``.
        """
        self.check_pos_shape(pos)
        if bool(self.pos_flags(pos).any()):  # one host sync per lift, for a clear error
            self.raise_for_pos(pos)

    def check_pos_shape(self, pos: Tensor) -> None:
        """Raise for a ``pos`` of the wrong type, shape or dtype (reads nothing from the device).

        Args:
            pos (torch.Tensor): points ``[N, space_dim]``.
        """
        if not isinstance(pos, Tensor):
            raise TypeError(f"{self.name}: pos must be a torch.Tensor, got {type(pos).__name__}")
        if pos.dim() != 2 or pos.shape[-1] != self.space_dim:
            raise ValueError(
                f"{self.name} acts on R^{self.space_dim}: pos must have shape [N, {self.space_dim}], "
                f"got {list(pos.shape)}"
            )
        if not pos.is_floating_point():
            raise ValueError(f"{self.name}: pos must be a floating point tensor, got {pos.dtype}")

    def pos_flags(self, pos: Tensor) -> Tensor:
        """``[2]`` booleans on the device: some coordinate is NaN or inf; some point is where the lift
        is undefined (the origin, for polar lifts). Read them with others in one sync.

        Args:
            pos (torch.Tensor): points ``[N, space_dim]``.
        """
        nonfinite = ~torch.isfinite(pos).all()
        if not self.undefined_at_origin:
            return torch.stack([nonfinite, torch.zeros_like(nonfinite)])
        return torch.stack([nonfinite, self._at_origin(pos).any()])

    def _at_origin(self, pos: Tensor) -> Tensor:
        return pos.norm(dim=-1) < torch.finfo(pos.dtype).tiny ** 0.5

    def raise_for_pos(self, pos: Tensor) -> None:
        """Raise the error that :meth:`pos_flags` found (several host syncs: only on bad input).

        Args:
            pos (torch.Tensor): points ``[N, space_dim]``.
        """
        if not bool(torch.isfinite(pos).all()):
            bad = (~torch.isfinite(pos)).any(-1).nonzero().flatten()[:5].tolist()
            raise ValueError(f"{self.name}: pos contains NaN or inf coordinates (points {bad} ...)")
        if self.undefined_at_origin and bool(self._at_origin(pos).any()):
            bad = self._at_origin(pos).nonzero().flatten()[:5].tolist()
            raise ValueError(
                f"{self.name}'s lift is undefined at the origin (its orbit coordinates are polar), "
                f"but points {bad} lie there: shift the points off the origin or use another group"
            )

    def _frames(self, frames: Optional[Tensor], pos: Tensor, num_samples: int, generator) -> Tensor:
        """The given stabilizer frames (validated) or Haar-random ones, ``[N, K, m, m]``."""
        from ._rotations import random_rotations

        m, n = self.frame_dim, pos.shape[0]
        if frames is None:
            return random_rotations((n, num_samples), m, dtype=pos.dtype, device=pos.device, generator=generator)
        if frames.shape != (n, num_samples, m, m):
            raise ValueError(f"{self.name}: frames must have shape {[n, num_samples, m, m]}, got {list(frames.shape)}")
        frames = frames.to(pos.dtype)
        if frames.numel():
            eye = torch.eye(m, dtype=frames.dtype, device=frames.device)
            tol = 1e3 * torch.finfo(frames.dtype).eps
            with torch.autocast(frames.device.type, enabled=False):
                orthogonal = (frames.transpose(-1, -2) @ frames - eye).abs().amax() <= tol
                proper = (torch.linalg.det(frames) > 0).all()
            if not bool(orthogonal & proper):  # host sync, once per lift
                raise ValueError(f"{self.name}: frames must be rotation matrices (orthonormal, det +1)")
        return frames

    def __repr__(self) -> str:
        return f"{self.name}(alpha={self.alpha:g})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


def weighted_parts(*parts: Tuple[float, Tensor]) -> Tensor:
    """``[w_1 t_1, w_2 t_2, ...]`` concatenated along the last dimension (a search embedding's blocks)."""
    return torch.cat([weight * part for weight, part in parts], dim=-1)


def unit_circle(theta: Tensor) -> Tensor:
    r"""Angles ``[...]`` as points :math:`(\cos\theta, \sin\theta)` ``[..., 2]``: the chord between two
    of them is at most the wrapped angle between them.

    Args:
        theta (torch.Tensor): angles ``[...]``.
    """
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)


def _less_precise(dtype: torch.dtype, than: torch.dtype) -> bool:
    return torch.finfo(dtype).eps > torch.finfo(than).eps


def log_in_double(group: LieGroup, g: Tensor) -> Tensor:
    """``group.log(g)`` evaluated in float64 and returned in ``g``'s dtype (for lifts of float32 input).

    Args:
        group (LieGroup): the group.
        g (torch.Tensor): its elements (matrices).
    """
    return group.log(g.to(torch.float64)).to(g.dtype)
